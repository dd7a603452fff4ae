// Package qga is a small client for the QEMU guest agent: it synchronises the channel and runs
// commands in the guest with their output captured.
package qga

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// ErrOutOfSync means the agent answered something other than the request in flight.
var ErrOutOfSync = errors.New("guest agent out of sync")

// Error is an error the agent returned for a command.
type Error struct {
	Command string
	Class   string `json:"class"`
	Desc    string `json:"desc"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("guest agent %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Client talks to one agent over its virtio-serial channel (a unix socket on the host). It is
// safe for concurrent use; requests are serialised.
type Client struct {
	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// Dial connects to the agent's socket and synchronises the channel (guest-sync-delimited), so
// that whatever an earlier client left in it is skipped.
func Dial(ctx context.Context, socket string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("connecting to the guest agent: %w", err)
	}
	c := &Client{conn: conn, r: bufio.NewReader(conn)}
	if err := c.Sync(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

func (c *Client) deadline(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(d)
	} else {
		c.conn.SetDeadline(time.Time{})
	}
}

// Sync resets the agent's parser and skips any stale output: the agent answers
// guest-sync-delimited with a 0xFF byte before the JSON, and echoes a random id.
func (c *Client) Sync(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline(ctx)
	id := rand.Int64N(1 << 40)
	req, _ := json.Marshal(map[string]any{"execute": "guest-sync-delimited", "arguments": map[string]any{"id": id}})
	// A leading 0xFF makes the agent drop any partial request it was parsing.
	if _, err := c.conn.Write(append(append([]byte{0xFF}, req...), '\n')); err != nil {
		return fmt.Errorf("guest-sync-delimited: %w", err)
	}
	for {
		if _, err := c.r.ReadBytes(0xFF); err != nil {
			return fmt.Errorf("guest-sync-delimited: %w", err)
		}
		var resp struct {
			Return *int64 `json:"return"`
		}
		line, err := c.r.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("guest-sync-delimited: %w", err)
		}
		if json.Unmarshal(bytes.TrimSpace(line), &resp) == nil && resp.Return != nil && *resp.Return == id {
			return nil
		}
		// An answer to an earlier sync: keep reading.
	}
}

// call sends one command and decodes its "return" into out (which may be nil).
func (c *Client) call(ctx context.Context, command string, args any, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline(ctx)
	msg := map[string]any{"execute": command}
	if args != nil {
		msg["arguments"] = args
	}
	req, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", command, err)
	}
	if _, err := c.conn.Write(append(req, '\n')); err != nil {
		return fmt.Errorf("sending %s: %w", command, err)
	}
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading the answer to %s: %w", command, err)
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
		Error  *Error          `json:"error"`
	}
	if err := json.Unmarshal(bytes.TrimLeft(line, "\xff"), &resp); err != nil {
		return fmt.Errorf("decoding the answer to %s (%q): %w", command, line, err)
	}
	if resp.Error != nil {
		resp.Error.Command = command
		return resp.Error
	}
	if resp.Return == nil {
		return fmt.Errorf("answer to %s %q: %w", command, line, ErrOutOfSync)
	}
	if out != nil {
		if err := json.Unmarshal(resp.Return, out); err != nil {
			return fmt.Errorf("decoding the answer to %s: %w", command, err)
		}
	}
	return nil
}

// Ping checks that the agent answers.
func (c *Client) Ping(ctx context.Context) error { return c.call(ctx, "guest-ping", nil, nil) }

// Result is how a command run with Exec ended.
type Result struct {
	ExitCode  int
	Signal    int // non-zero when the command was killed by a signal
	Stdout    []byte
	Stderr    []byte
	Truncated bool // the agent cut the output (it keeps a few MiB)
}

// Exec runs path with args in the guest, without a shell, feeding stdin (may be nil), and waits
// for it to finish, polling guest-exec-status. Cancelling ctx stops the waiting, not the command.
func (c *Client) Exec(ctx context.Context, path string, args []string, stdin []byte) (*Result, error) {
	req := map[string]any{"path": path, "arg": args, "capture-output": true}
	if args == nil {
		req["arg"] = []string{}
	}
	if stdin != nil {
		req["input-data"] = stdin // []byte encodes as base64, as the agent wants
	}
	var started struct {
		PID int `json:"pid"`
	}
	if err := c.call(ctx, "guest-exec", req, &started); err != nil {
		return nil, err
	}
	delay := 50 * time.Millisecond
	for {
		var st struct {
			Exited       bool   `json:"exited"`
			ExitCode     *int   `json:"exitcode"`
			Signal       *int   `json:"signal"`
			OutData      []byte `json:"out-data"`
			ErrData      []byte `json:"err-data"`
			OutTruncated bool   `json:"out-truncated"`
			ErrTruncated bool   `json:"err-truncated"`
		}
		if err := c.call(ctx, "guest-exec-status", map[string]any{"pid": started.PID}, &st); err != nil {
			return nil, err
		}
		if st.Exited {
			r := &Result{Stdout: st.OutData, Stderr: st.ErrData, Truncated: st.OutTruncated || st.ErrTruncated}
			if st.ExitCode != nil {
				r.ExitCode = *st.ExitCode
			}
			if st.Signal != nil {
				r.Signal = *st.Signal
				r.ExitCode = -1
			}
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s (pid %d) in the guest: %w", path, started.PID, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}

// Shutdown asks the guest to "powerdown", "reboot" or "halt". The agent does not answer a
// successful shutdown, so this returns once the request is written.
func (c *Client) Shutdown(ctx context.Context, mode string) error {
	switch mode {
	case "powerdown", "reboot", "halt":
	default:
		return fmt.Errorf("shutdown mode %q is not one of powerdown, reboot, halt", mode)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline(ctx)
	req, _ := json.Marshal(map[string]any{"execute": "guest-shutdown", "arguments": map[string]any{"mode": mode}})
	if _, err := c.conn.Write(append(req, '\n')); err != nil {
		return fmt.Errorf("sending guest-shutdown: %w", err)
	}
	return nil
}
