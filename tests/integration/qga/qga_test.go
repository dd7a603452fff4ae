package qga

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeAgent answers like qemu-ga on a unix socket: it runs "commands" from a table, reports
// them still running for the first status poll, and leaves stale output in the channel before
// the first sync, as a previous client would.
type fakeAgent struct {
	t        *testing.T
	programs map[string]func(args []string, stdin []byte) (code int, out, errOut string)
	shutdown chan string
}

func (a *fakeAgent) serve(conn net.Conn) {
	defer conn.Close()
	conn.Write([]byte(`{"return": {"pid": 1}}` + "\n" + `{"return": 12345}` + "\n"))
	type job struct {
		polls       int
		code        int
		out, errOut string
	}
	jobs := map[int]*job{}
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		// qemu-ga drops 0xFF bytes: they reset its parser.
		line := bytes.TrimLeft(sc.Bytes(), "\xff")
		var req struct {
			Execute   string          `json:"execute"`
			Arguments json.RawMessage `json:"arguments"`
		}
		if err := json.Unmarshal(line, &req); err != nil {
			a.t.Errorf("agent got %q: %v", line, err)
			return
		}
		reply := func(v any) {
			b, _ := json.Marshal(v)
			conn.Write(append(b, '\n'))
		}
		switch req.Execute {
		case "guest-sync-delimited":
			var args struct{ ID int64 }
			json.Unmarshal(req.Arguments, &args)
			conn.Write([]byte{0xFF})
			reply(map[string]any{"return": args.ID})
		case "guest-ping":
			reply(map[string]any{"return": map[string]any{}})
		case "guest-exec":
			var args struct {
				Path    string   `json:"path"`
				Arg     []string `json:"arg"`
				Input   []byte   `json:"input-data"`
				Capture bool     `json:"capture-output"`
			}
			json.Unmarshal(req.Arguments, &args)
			prog, ok := a.programs[args.Path]
			if !ok || !args.Capture {
				reply(map[string]any{"error": map[string]any{"class": "GenericError", "desc": "Guest agent command failed, error was 'Failed to execute child process “" + args.Path + "” (No such file or directory)'"}})
				continue
			}
			code, out, errOut := prog(args.Arg, args.Input)
			pid := 100 + len(jobs)
			jobs[pid] = &job{code: code, out: out, errOut: errOut}
			reply(map[string]any{"return": map[string]any{"pid": pid}})
		case "guest-exec-status":
			var args struct{ PID int }
			json.Unmarshal(req.Arguments, &args)
			j := jobs[args.PID]
			j.polls++
			if j.polls == 1 {
				reply(map[string]any{"return": map[string]any{"exited": false}})
				continue
			}
			reply(map[string]any{"return": map[string]any{
				"exited": true, "exitcode": j.code, "out-data": []byte(j.out), "err-data": []byte(j.errOut),
			}})
		case "guest-shutdown":
			var args struct{ Mode string }
			json.Unmarshal(req.Arguments, &args)
			a.shutdown <- args.Mode
		default:
			reply(map[string]any{"error": map[string]any{"class": "CommandNotFound", "desc": "The command " + req.Execute + " has not been found"}})
		}
	}
}

func startAgent(t *testing.T) (socket string, a *fakeAgent) {
	t.Helper()
	socket = filepath.Join(t.TempDir(), "qga.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	a = &fakeAgent{t: t, shutdown: make(chan string, 1), programs: map[string]func([]string, []byte) (int, string, string){
		"/bin/echo": func(args []string, _ []byte) (int, string, string) { return 0, strings.Join(args, " ") + "\n", "" },
		"/bin/cat":  func(_ []string, in []byte) (int, string, string) { return 0, string(in), "" },
		"/bin/false": func([]string, []byte) (int, string, string) {
			return 1, "", "touch: cannot touch '/x': Read-only file system\n"
		},
	}}
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go a.serve(conn)
		}
	}()
	return socket, a
}

func TestClient(t *testing.T) {
	socket, agent := startAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, socket)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping after a sync past stale output: %v", err)
	}

	tests := []struct {
		path   string
		args   []string
		stdin  []byte
		code   int
		stdout string
		stderr string
	}{
		{path: "/bin/echo", args: []string{"hello", "guest"}, stdout: "hello guest\n"},
		{path: "/bin/cat", stdin: []byte("from stdin\x00\xff"), stdout: "from stdin\x00\xff"},
		{path: "/bin/false", code: 1, stderr: "Read-only file system"},
	}
	for _, tc := range tests {
		r, err := c.Exec(ctx, tc.path, tc.args, tc.stdin)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if r.ExitCode != tc.code || string(r.Stdout) != tc.stdout || !strings.Contains(string(r.Stderr), tc.stderr) {
			t.Errorf("%s: got code %d stdout %q stderr %q", tc.path, r.ExitCode, r.Stdout, r.Stderr)
		}
	}

	_, err = c.Exec(ctx, "/no/such", nil, nil)
	var qerr *Error
	if !errors.As(err, &qerr) || qerr.Command != "guest-exec" || !strings.Contains(qerr.Desc, "No such file") {
		t.Errorf("missing program: got %v", err)
	}
	// The channel is still in step after an error.
	if r, err := c.Exec(ctx, "/bin/echo", []string{"again"}, nil); err != nil || !bytes.Equal(r.Stdout, []byte("again\n")) {
		t.Errorf("after an error: %v %v", r, err)
	}

	if err := c.Shutdown(ctx, "sideways"); err == nil {
		t.Error("a bad shutdown mode was accepted")
	}
	if err := c.Shutdown(ctx, "reboot"); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-agent.shutdown:
		if m != "reboot" {
			t.Errorf("agent got shutdown mode %q", m)
		}
	case <-ctx.Done():
		t.Fatal("the agent never got guest-shutdown")
	}
}

func TestDialTimesOutOnSilentAgent(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "qga.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Accept and never answer: QEMU does this while the guest's agent is not running yet.
	go func() {
		conn, err := l.Accept()
		if err == nil {
			defer conn.Close()
			time.Sleep(5 * time.Second)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Dial(ctx, socket); err == nil {
		t.Fatal("Dial succeeded against a silent agent")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Dial took %v, want about the context's 300ms", d)
	}
}
