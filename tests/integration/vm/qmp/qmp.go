// Package qmp is a small client for the QEMU Machine Protocol: it negotiates capabilities,
// runs monitor commands and keeps the asynchronous events for whoever waits for them.
package qmp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// ErrClosed means the connection ended (the client was closed or QEMU went away).
var ErrClosed = errors.New("qmp connection closed")

// Error is an error QEMU returned for a command.
type Error struct {
	Command string
	Class   string `json:"class"`
	Desc    string `json:"desc"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s", e.Command, e.Desc)
}

// Event is one asynchronous message from QEMU.
type Event struct {
	Name string
	Data json.RawMessage // the event's "data" object, if any
	Time time.Time       // when QEMU emitted it
}

// maxEvents bounds the events kept for later waiters; a busy machine emits many that nobody
// waits for, and the oldest matter least.
const maxEvents = 1024

// message is any line QEMU sends: a greeting, an answer or an event.
type message struct {
	Greeting  json.RawMessage `json:"QMP"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
	Return json.RawMessage `json:"return"`
	Error  *Error          `json:"error"`
	ID     string          `json:"id"`
}

// Client is one monitor connection. It is safe for concurrent use; commands are serialised.
//
// A goroutine reads everything QEMU sends, so that events are never lost between commands and
// a command abandoned by its context cannot leave its late answer for the next one: every
// command carries an id and answers with another id are dropped.
type Client struct {
	conn net.Conn
	cmd  sync.Mutex // one command in flight

	answers chan message // holds at most the one answer for waiting
	done    chan struct{}
	readErr error // set before done is closed

	mu      sync.Mutex
	nextID  int
	waiting string // id of the command whose answer is wanted
	events  []Event
	arrived chan struct{} // closed and replaced when an event arrives
}

// Dial connects to the monitor socket, reads the greeting and leaves capabilities negotiation
// mode, so commands may follow. A missing socket is retried until ctx ends, since QEMU creates
// it a moment after it starts.
func Dial(ctx context.Context, socket string) (*Client, error) {
	var conn net.Conn
	for {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "unix", socket)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connecting to the qemu monitor %s: %w", socket, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	c, err := handshake(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func handshake(ctx context.Context, conn net.Conn) (*Client, error) {
	dec := json.NewDecoder(conn)
	// The reader goroutine does not exist yet, so the greeting is read with a plain deadline.
	if d, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	var hello message
	err := dec.Decode(&hello)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("reading the qemu monitor greeting: %w", err)
	}
	if hello.Greeting == nil {
		return nil, fmt.Errorf("reading the qemu monitor greeting: got %s instead", describe(hello))
	}
	conn.SetReadDeadline(time.Time{})
	c := &Client{
		conn:    conn,
		answers: make(chan message, 1),
		done:    make(chan struct{}),
		arrived: make(chan struct{}),
	}
	go c.read(dec)
	if _, err := c.Execute(ctx, "qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return c, nil
}

func describe(m message) string {
	b, _ := json.Marshal(m)
	return string(b)
}

// read runs until the connection ends, sorting events from answers.
func (c *Client) read(dec *json.Decoder) {
	var err error
	for {
		var m message
		if err = dec.Decode(&m); err != nil {
			break
		}
		if m.Event == "" {
			c.mu.Lock()
			if m.ID != "" && m.ID == c.waiting {
				c.waiting = ""
				c.answers <- m // never blocks: one answer per waiting id, and room for one
			}
			c.mu.Unlock()
			continue
		}
		e := Event{Name: m.Event, Data: m.Data}
		if m.Timestamp != nil {
			e.Time = time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000)
		}
		c.mu.Lock()
		if len(c.events) == maxEvents {
			c.events = c.events[1:]
		}
		c.events = append(c.events, e)
		close(c.arrived)
		c.arrived = make(chan struct{})
		c.mu.Unlock()
	}
	c.readErr = err
	close(c.done)
}

// Close ends the connection.
func (c *Client) Close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

func (c *Client) closedErr() error {
	if c.readErr != nil && !errors.Is(c.readErr, net.ErrClosed) {
		return fmt.Errorf("%w: %v", ErrClosed, c.readErr)
	}
	return ErrClosed
}

// Execute runs one command with its arguments (nil for none, else anything that encodes as a
// JSON object) and returns its "return" value. An error QEMU reports is an *Error naming the
// command. Cancelling ctx abandons the wait, not the command.
func (c *Client) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	c.cmd.Lock()
	defer c.cmd.Unlock()
	// An abandoned command's answer may have been delivered just as it was given up.
	select {
	case <-c.answers:
	default:
	}
	c.mu.Lock()
	c.nextID++
	id := strconv.Itoa(c.nextID)
	c.waiting = id
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.waiting = ""
		c.mu.Unlock()
	}()
	req := map[string]any{"execute": command, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	line, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding qmp %s: %w", command, err)
	}
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetWriteDeadline(d)
	} else {
		c.conn.SetWriteDeadline(time.Time{})
	}
	if _, err := c.conn.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("sending qmp %s: %w", command, err)
	}
	for {
		select {
		case m := <-c.answers:
			if m.ID != id {
				continue // not this command's answer
			}
			if m.Error != nil {
				m.Error.Command = command
				return nil, m.Error
			}
			if m.Return == nil {
				return nil, fmt.Errorf("qmp %s: answer without return or error: %s", command, describe(m))
			}
			return m.Return, nil
		case <-c.done:
			return nil, fmt.Errorf("qmp %s: %w", command, c.closedErr())
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for qmp %s: %w", command, ctx.Err())
		}
	}
}

// WaitEvent returns the first event called name for which match (nil matches all) is true,
// waiting for it until ctx ends. Events that arrived earlier count, so an event QEMU sends
// while the command that causes it is still being answered is not missed; the event
// returned is removed, others stay.
func (c *Client) WaitEvent(ctx context.Context, name string, match func(Event) bool) (Event, error) {
	for {
		c.mu.Lock()
		for i, e := range c.events {
			if e.Name == name && (match == nil || match(e)) {
				c.events = append(c.events[:i:i], c.events[i+1:]...)
				c.mu.Unlock()
				return e, nil
			}
		}
		arrived := c.arrived
		c.mu.Unlock()
		select {
		case <-arrived:
		case <-c.done:
			return Event{}, fmt.Errorf("waiting for qmp event %s: %w", name, c.closedErr())
		case <-ctx.Done():
			return Event{}, fmt.Errorf("waiting for qmp event %s: %w", name, ctx.Err())
		}
	}
}

// DiscardEvents forgets the events called name that arrived so far (all when name is empty).
func (c *Client) DiscardEvents(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.events[:0]
	for _, e := range c.events {
		if name != "" && e.Name != name {
			kept = append(kept, e)
		}
	}
	clear(c.events[len(kept):])
	c.events = kept
}
