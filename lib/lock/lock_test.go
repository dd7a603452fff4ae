package lock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdEnv makes the re-executed test binary take the lock at the named path,
// report "locked" on stdout and then wait to be killed.
const holdEnv = "LOCK_TEST_HOLD"

func TestMain(m *testing.M) {
	if path := os.Getenv(holdEnv); path != "" {
		l, err := Acquire(context.Background(), path, Options{Operation: "upgrade"})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Println("locked")
		// Sleep rather than block forever so an orphaned holder still exits;
		// KeepAlive stops the finalizer from closing the file early.
		time.Sleep(time.Minute)
		runtime.KeepAlive(l)
		os.Exit(0)
	}
	if path := os.Getenv(childEnv); path != "" {
		// A step tool run by a lock holder: it must get the lock at once and release only its copy.
		l, err := Acquire(context.Background(), path, Options{Operation: "stage"})
		if err != nil {
			fmt.Println(err)
			os.Exit(2)
		}
		if err := l.Release(); err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		fmt.Println("ok")
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childEnv makes the re-executed test binary acquire and release the lock once.
const childEnv = "LOCK_TEST_CHILD"

func TestHandoff(t *testing.T) {
	path := lockPath(t)
	l := mustAcquire(t, path, "upgrade")
	child := func(handoff bool, extraEnv ...string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+path)
		cmd.Env = append(cmd.Env, extraEnv...)
		if handoff {
			l.Handoff(cmd)
		}
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := child(true); err != nil || out != "ok" {
		t.Fatalf("child with the lock handed off: %q, %v", out, err)
	}
	// The child's release did not unlock the parent.
	if _, err := Acquire(context.Background(), path, Options{Operation: "other"}); !errors.Is(err, ErrBusy) {
		t.Errorf("lock free after the child released its copy: %v", err)
	}
	if out, err := child(false); err == nil || !strings.Contains(out, "in progress") {
		t.Errorf("child without the lock: %q, %v", out, err)
	}
	if out, err := child(false, EnvFD+"=1"); err == nil || !strings.Contains(out, "inherited file descriptor") {
		t.Errorf("bogus %s: %q, %v", EnvFD, out, err)
	}
	other, _ := os.Open(os.Args[0]) // a descriptor that is not the lock
	defer other.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path, EnvFD+"=3")
	cmd.ExtraFiles = []*os.File{other}
	if out, err := cmd.Output(); err == nil || !strings.Contains(string(out), "does not refer to the lock") {
		t.Errorf("descriptor of another file: %q, %v", out, err)
	}
}

func lockPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "lock")
}

func mustAcquire(t *testing.T, path, op string) *Lock {
	t.Helper()
	l, err := Acquire(context.Background(), path, Options{Operation: op})
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	t.Cleanup(func() { l.Release() })
	return l
}

func TestAcquireCreatesFileWithHolder(t *testing.T) {
	path := lockPath(t)
	mustAcquire(t, path, "upgrade")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %v, want 0600", got)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d upgrade\n", os.Getpid()); string(data) != want {
		t.Errorf("lock file = %q, want %q", data, want)
	}
}

func TestAcquireTruncatesStaleRecord(t *testing.T) {
	path := lockPath(t)
	if err := os.WriteFile(path, []byte("999999 some-very-long-old-operation-name\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustAcquire(t, path, "stage")
	data, _ := os.ReadFile(path)
	if want := fmt.Sprintf("%d stage\n", os.Getpid()); string(data) != want {
		t.Errorf("lock file = %q, want %q", data, want)
	}
}

func TestSecondWriterBusy(t *testing.T) {
	path := lockPath(t)
	mustAcquire(t, path, "upgrade")
	notified := 0
	start := time.Now()
	_, err := Acquire(context.Background(), path, Options{
		Operation: "switch",
		Notify:    func(string) { notified++ },
	})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	want := fmt.Sprintf("another bootc operation is in progress (pid %d: upgrade)", os.Getpid())
	if err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if notified != 0 {
		t.Errorf("notify called %d times with Wait=0, want 0", notified)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Wait=0 took %v, want an immediate failure", d)
	}
}

func TestWaitTimesOut(t *testing.T) {
	path := lockPath(t)
	mustAcquire(t, path, "upgrade")
	var msgs []string
	start := time.Now()
	_, err := Acquire(context.Background(), path, Options{
		Operation: "switch",
		Wait:      350 * time.Millisecond,
		Notify:    func(m string) { msgs = append(msgs, m) },
	})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Errorf("gave up after %v, before Wait", d)
	}
	wantMsg := fmt.Sprintf("waiting for another bootc operation to finish (pid %d: upgrade)", os.Getpid())
	if len(msgs) != 1 || msgs[0] != wantMsg {
		t.Errorf("notify messages = %q, want exactly [%q]", msgs, wantMsg)
	}
}

func TestWaitSucceedsAfterRelease(t *testing.T) {
	path := lockPath(t)
	first, err := Acquire(context.Background(), path, Options{Operation: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	notified := make(chan string, 10)
	go func() {
		time.Sleep(300 * time.Millisecond)
		first.Release()
	}()
	second, err := Acquire(context.Background(), path, Options{
		Operation: "switch",
		Wait:      10 * time.Second,
		Notify:    func(m string) { notified <- m },
	})
	if err != nil {
		t.Fatalf("second Acquire: %v", err)
	}
	defer second.Release()
	close(notified)
	if n := len(notified); n != 1 {
		t.Errorf("notify called %d times, want 1", n)
	}
	data, _ := os.ReadFile(path)
	if want := fmt.Sprintf("%d switch\n", os.Getpid()); string(data) != want {
		t.Errorf("lock file = %q, want %q", data, want)
	}
}

func TestContextCancelStopsWaiting(t *testing.T) {
	path := lockPath(t)
	mustAcquire(t, path, "upgrade")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	_, err := Acquire(ctx, path, Options{Operation: "switch", Wait: time.Minute})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if errors.Is(err, ErrBusy) {
		t.Errorf("cancelled wait reported ErrBusy: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v to stop the wait", d)
	}
}

func TestCancelledContextFailsAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	path := lockPath(t)
	if _, err := Acquire(ctx, path, Options{Operation: "upgrade"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file created despite cancelled context: %v", err)
	}
}

func TestReleaseFreesAndIsIdempotent(t *testing.T) {
	path := lockPath(t)
	l, err := Acquire(context.Background(), path, Options{Operation: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	data, _ := os.ReadFile(path)
	if len(data) != 0 {
		t.Errorf("lock file after release = %q, want empty", data)
	}
	mustAcquire(t, path, "rollback")
}

func TestKilledHolderFreesLock(t *testing.T) {
	path := lockPath(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("holder said %q, %v", line, err)
	}

	_, err = Acquire(context.Background(), path, Options{Operation: "switch"})
	want := fmt.Sprintf("(pid %d: upgrade)", cmd.Process.Pid)
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), want) {
		t.Fatalf("while child holds: err = %v, want ErrBusy naming %s", err, want)
	}

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	l, err := Acquire(context.Background(), path, Options{Operation: "switch"})
	if err != nil {
		t.Fatalf("after holder was killed: %v", err)
	}
	l.Release()
}

func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "target"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
		opts Options
		want string
	}{
		{"empty operation", "lock", Options{}, "lock operation name is empty"},
		{"newline in operation", "lock", Options{Operation: "up\ngrade"}, "control characters"},
		{"long operation", "lock", Options{Operation: strings.Repeat("x", 65)}, "longer than 64"},
		{"negative wait", "lock", Options{Operation: "upgrade", Wait: -time.Second}, "wait is negative"},
		{"missing parent", "nodir/lock", Options{Operation: "upgrade"}, "no such file"},
		{"directory", "subdir", Options{Operation: "upgrade"}, "opening lock file"},
		{"symlink", "link", Options{Operation: "upgrade"}, "opening lock file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Acquire(context.Background(), filepath.Join(dir, tt.path), tt.opts)
			if err == nil {
				l.Release()
				t.Fatal("Acquire succeeded, want error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("err spans lines: %q", err)
			}
		})
	}
	if _, err := os.Lstat(filepath.Join(dir, "target")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("symlink target was created: %v", err)
	}
}

func TestHolderUnknown(t *testing.T) {
	tests := []struct {
		name, record, want string
	}{
		{"empty", "", "holder unknown"},
		{"garbage", "not a record\n", "holder unknown"},
		{"no operation", "42\n", "holder unknown"},
		{"valid", "42 finalize\n", "pid 42: finalize"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := lockPath(t)
			if err := os.WriteFile(path, []byte(tt.record), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got := holder(f); got != tt.want {
				t.Errorf("holder = %q, want %q", got, tt.want)
			}
		})
	}
}
