package failpoint

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a writer with three steps instead of running tests.
const helperEnv = "FAILPOINT_TEST_WRITER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		Hit("one")
		Prefixed("lib")("two")
		Hit("three")
		os.Stdout.WriteString("finished\n")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// writer is the test binary re-run as the three-step writer, with env added to a clean
// failpoint environment.
func writer(t *testing.T, env ...string) (cmd *exec.Cmd, stdout, stderr *bytes.Buffer) {
	t.Helper()
	cmd = exec.Command(os.Args[0])
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, Env) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, append([]string{helperEnv + "=1"}, env...)...)
	stdout, stderr = new(bytes.Buffer), new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd, stdout, stderr
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatalf("running the writer: %v", err)
	}
	return ee.ExitCode()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(data)
}

func TestUnarmedStepsAreTracedOnly(t *testing.T) {
	dir := t.TempDir()
	trace, notify := filepath.Join(dir, "trace"), filepath.Join(dir, "notify")
	cmd, stdout, stderr := writer(t, EnvTrace+"="+trace, EnvNotify+"="+notify, Env+"=elsewhere")
	if code := exitCode(t, cmd.Run()); code != 0 || stdout.String() != "finished\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want the writer to finish", code, stdout, stderr)
	}
	if got := readFile(t, trace); got != "one\nlib:two\nthree\n" {
		t.Errorf("trace = %q", got)
	}
	if got := readFile(t, notify); got != "" {
		t.Errorf("notified %q although no armed step was reached", got)
	}
}

func TestExitStopsAtTheStep(t *testing.T) {
	for _, action := range []string{"", ActionExit, "pause"} {
		t.Run("action="+action, func(t *testing.T) {
			dir := t.TempDir()
			trace, notify := filepath.Join(dir, "trace"), filepath.Join(dir, "notify")
			env := []string{EnvTrace + "=" + trace, EnvNotify + "=" + notify, Env + "=lib:two"}
			if action != "" {
				env = append(env, EnvAction+"="+action)
			}
			cmd, stdout, stderr := writer(t, env...)
			if code := exitCode(t, cmd.Run()); code != ExitCode || stdout.Len() != 0 {
				t.Fatalf("exit %d, stdout %q; want exit %d before the writer finishes", code, stdout, ExitCode)
			}
			if got := readFile(t, trace); got != "one\nlib:two\n" {
				t.Errorf("trace = %q, want the steps up to lib:two", got)
			}
			if got := readFile(t, notify); got != "lib:two\n" {
				t.Errorf("notified %q, want lib:two", got)
			}
			want := "failpoint lib:two: stopping here"
			if action == "pause" {
				want = `failpoint lib:two: unknown BOOTC_FAILPOINT_ACTION="pause" (want exit or block); stopping here`
			}
			if got := strings.TrimSpace(stderr.String()); got != want {
				t.Errorf("stderr %q, want %q", got, want)
			}
		})
	}
}

// TestBlockWaitsAtTheStep reads the notification from a FIFO, as a VM test reads it from a
// virtio-serial port, and checks that the writer then stays put at the step until killed.
func TestBlockWaitsAtTheStep(t *testing.T) {
	dir := t.TempDir()
	trace, fifo := filepath.Join(dir, "trace"), filepath.Join(dir, "notify")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read-write, so opening does not wait for the writer and reads wait for its line.
	r, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd, stdout, stderr := writer(t, EnvTrace+"="+trace, EnvNotify+"="+fifo, Env+"=lib:two", EnvAction+"="+ActionBlock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()

	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- s
	}()
	select {
	case got := <-line:
		if got != "lib:two\n" {
			t.Fatalf("notified %q, want lib:two", got)
		}
	case err := <-exited:
		t.Fatalf("the writer ended (%v) without notifying; stdout %q, stderr %q", err, stdout, stderr)
	case <-time.After(30 * time.Second):
		t.Fatal("no notification within 30s")
	}

	select {
	case err := <-exited:
		t.Fatalf("the writer did not block at lib:two: %v; stdout %q, stderr %q", err, stdout, stderr)
	case <-time.After(500 * time.Millisecond):
	}
	if got := readFile(t, trace); got != "one\nlib:two\n" {
		t.Errorf("trace while blocked = %q, want the steps up to lib:two", got)
	}
	cmd.Process.Kill()
	if err := <-exited; exitCode(t, err) != -1 {
		t.Errorf("the blocked writer ended with %v, want killed", err)
	}
	if stdout.Len() != 0 || readFile(t, trace) != "one\nlib:two\n" {
		t.Errorf("the writer went past lib:two: stdout %q, trace %q", stdout, readFile(t, trace))
	}
	if got := strings.TrimSpace(stderr.String()); got != "failpoint lib:two: blocking here until killed" {
		t.Errorf("stderr %q", got)
	}
}
