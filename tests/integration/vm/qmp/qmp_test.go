package qmp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// request is a command as the fake monitor receives it.
type request struct {
	Execute   string          `json:"execute"`
	Arguments json.RawMessage `json:"arguments"`
	ID        string          `json:"id"`
}

// fakeMonitor serves one connection on a fresh socket: it sends greeting (a QEMU greeting
// unless given), answers qmp_capabilities and hands every other command to handle, which
// writes whatever lines it likes with send and may hang up, as a QEMU that ends does.
func fakeMonitor(t *testing.T, greeting string, handle func(r request, send func(string)) (hangUp bool)) string {
	t.Helper()
	// Unix socket paths are short; t.TempDir() can be long.
	dir, err := os.MkdirTemp("", "qmp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "qmp.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if greeting == "" {
		greeting = `{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}`
	}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		send := func(line string) { fmt.Fprintf(conn, "%s\r\n", line) }
		send(greeting)
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			var r request
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				send(`{"error": {"class": "GenericError", "desc": "bad json"}}`)
				continue
			}
			if r.Execute == "qmp_capabilities" {
				send(fmt.Sprintf(`{"return": {}, "id": %q}`, r.ID))
				continue
			}
			if handle(r, send) {
				return
			}
		}
	}()
	return socket
}

func dial(t *testing.T, socket string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestExecuteSkipsEvents(t *testing.T) {
	got := make(chan request, 1)
	socket := fakeMonitor(t, "", func(r request, send func(string)) bool {
		got <- r
		send(`{"timestamp": {"seconds": 1700000000, "microseconds": 5}, "event": "DEVICE_DELETED", "data": {"device": "a", "path": "/machine/peripheral/a"}}`)
		send(`{"event": "STOP"}`)
		send(fmt.Sprintf(`{"return": {"running": false, "status": "prelaunch"}, "id": %q}`, r.ID))
		return false
	})
	c := dial(t, socket)
	ret, err := c.Execute(t.Context(), "query-status", map[string]any{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(ret, &st); err != nil || st.Status != "prelaunch" {
		t.Fatalf("return %s (%v), want status prelaunch", ret, err)
	}
	r := <-got
	if r.Execute != "query-status" || string(r.Arguments) != `{"x":1}` {
		t.Errorf("monitor got %+v", r)
	}
	// The events that came before the answer are kept for waiters.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	e, err := c.WaitEvent(ctx, "DEVICE_DELETED", func(e Event) bool { return strings.Contains(string(e.Data), `"a"`) })
	if err != nil {
		t.Fatal(err)
	}
	if e.Time.Unix() != 1700000000 {
		t.Errorf("event time %v", e.Time)
	}
	// The event returned is consumed; the other stays.
	short, cancel2 := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel2()
	if _, err := c.WaitEvent(short, "DEVICE_DELETED", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second wait: %v, want a deadline error", err)
	}
	if _, err := c.WaitEvent(ctx, "STOP", nil); err != nil {
		t.Errorf("STOP: %v", err)
	}
}

func TestExecuteError(t *testing.T) {
	socket := fakeMonitor(t, "", func(r request, send func(string)) bool {
		send(fmt.Sprintf(`{"error": {"class": "GenericError", "desc": "Duplicate device ID 'stick'"}, "id": %q}`, r.ID))
		return false
	})
	c := dial(t, socket)
	_, err := c.Execute(t.Context(), "device_add", map[string]any{"id": "stick"})
	var qe *Error
	if !errors.As(err, &qe) || qe.Class != "GenericError" || qe.Command != "device_add" {
		t.Fatalf("got %#v, want an *Error for device_add", err)
	}
	if err.Error() != "qmp device_add: Duplicate device ID 'stick'" {
		t.Errorf("message %q", err)
	}
}

func TestAbandonedCommand(t *testing.T) {
	var slowID string
	socket := fakeMonitor(t, "", func(r request, send func(string)) bool {
		switch r.Execute {
		case "slow":
			slowID = r.ID // answered only with the next command
		case "next":
			send(fmt.Sprintf(`{"return": "late", "id": %q}`, slowID))
			send(fmt.Sprintf(`{"return": "fresh", "id": %q}`, r.ID))
		}
		return false
	})
	c := dial(t, socket)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Execute(ctx, "slow", nil); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "slow") {
		t.Fatalf("got %v, want a deadline error naming the command", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s to give up", d)
	}
	ret, err := c.Execute(t.Context(), "next", nil)
	if err != nil || string(ret) != `"fresh"` {
		t.Fatalf("got %s, %v; want the answer to next, not the late one", ret, err)
	}
}

func TestClosedByQEMU(t *testing.T) {
	socket := fakeMonitor(t, "", func(r request, send func(string)) bool {
		send(`{"event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}`)
		return r.Execute == "quit" // and never answers it
	})
	c := dial(t, socket)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, err := c.Execute(ctx, "quit", nil); !errors.Is(err, ErrClosed) || !strings.Contains(err.Error(), "quit") {
		t.Fatalf("got %v, want ErrClosed naming the command", err)
	}
	// Events that came before the end can still be had; waiting for more fails at once.
	if _, err := c.WaitEvent(ctx, "SHUTDOWN", nil); err != nil {
		t.Errorf("SHUTDOWN: %v", err)
	}
	if _, err := c.WaitEvent(ctx, "RESUME", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("got %v, want ErrClosed", err)
	}
}

func TestDialRejects(t *testing.T) {
	notQMP := fakeMonitor(t, `{"return": {}}`, func(request, func(string)) bool { return false })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if c, err := Dial(ctx, notQMP); err == nil || !strings.Contains(err.Error(), "greeting") {
		if c != nil {
			c.Close()
		}
		t.Errorf("server without greeting: got %v", err)
	}

	missing := filepath.Join(t.TempDir(), "none.sock")
	short, cancel2 := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel2()
	if _, err := Dial(short, missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing socket: got %v, want an error naming it", err)
	}
}

func TestDialWaitsForSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "qmp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	link := filepath.Join(dir, "late.sock")
	socket := fakeMonitor(t, "", func(request, func(string)) bool { return false })
	// The socket shows up a little after the dial starts, as QEMU's does.
	time.AfterFunc(200*time.Millisecond, func() { os.Symlink(socket, link) })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, link)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
