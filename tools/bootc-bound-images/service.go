package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containers/podman/v5/pkg/bindings"
)

// service is a podman API service this command started for itself on a private socket, and
// the bindings connection to it.
//
// The bindings speak the libpod REST API of podman 5; they accept any service whose
// Libpod-API-Version is at least 4.0.0, and podman 4.3's service answers the calls made here
// (exists, pull, list, inspect, remove, export, load) whatever API version the URL names.
type service struct {
	Conn context.Context
	cmd  *exec.Cmd
	dir  string
	out  *tail
	done chan struct{}
	err  error // the service's exit status, once done is closed
}

// serviceOptions say which storage the service works on.
type serviceOptions struct {
	Podman string
	// Root is the storage's graph root.
	Root string
	// Private gives the service its own run root and temporary directory, removed when it
	// stops: bootc's storage holds images only, and nothing else may run on it meanwhile.
	// Without it, the service uses the storage's usual ones (another program's storage).
	Private bool
	// Env is the service's whole environment.
	Env []string
}

// startTimeout bounds how long the service may take to answer its first ping.
const startTimeout = 60 * time.Second

// startService starts `podman system service` and connects to it.
func startService(ctx context.Context, o serviceOptions) (*service, error) {
	// Short: a unix socket path is limited to 107 bytes.
	dir, err := os.MkdirTemp("", "bootc-podman.")
	if err != nil {
		return nil, fmt.Errorf("starting podman service: %w", err)
	}
	s := &service{dir: dir, out: &tail{}, done: make(chan struct{})}
	sock := filepath.Join(dir, "podman.sock")
	args := []string{"--root", o.Root}
	if o.Private {
		// libpod records the run root, temporary directory and graph root it was first started
		// with in its database and refuses to start with others. bootc's storage holds no
		// containers, pods or volumes, so that database holds nothing but those paths: drop it,
		// so every run (and a storage filled at install and used on the booted host) can use a
		// private run root. podman 4 keeps it in BoltDB, podman 5 in SQLite.
		for _, db := range []string{filepath.Join("libpod", "bolt_state.db"), "db.sql"} {
			if err := os.Remove(filepath.Join(o.Root, db)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("starting podman service: %w", err)
			}
		}
		args = append(args, "--runroot", filepath.Join(dir, "run"), "--tmpdir", filepath.Join(dir, "tmp"))
	}
	// podman 4.3 on this kind of host can only run containers with runc (and finds it through
	// containers.conf); the service runs none, but checks the runtime when it starts.
	if _, err := exec.LookPath("runc"); err == nil {
		args = append(args, "--runtime", "runc")
	}
	args = append(args, "--events-backend", "none", "system", "service", "--time", "0", "unix://"+sock)
	s.cmd = exec.Command(o.Podman, args...)
	s.cmd.Env = o.Env
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	// The service must not outlive this command, whatever happens to it. Its own mount
	// namespace takes the mounts the overlay driver makes (and leaves when the service is
	// stopped) away with it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Unshareflags: syscall.CLONE_NEWNS}
	if err := s.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting podman service: %w", err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		if _, err := os.Stat(sock); err == nil {
			conn, err := bindings.NewConnection(ctx, "unix://"+sock)
			if err == nil {
				s.Conn = conn
				return s, nil
			}
			if time.Now().After(deadline) {
				s.Stop()
				return nil, fmt.Errorf("starting podman service on %s: %w", o.Root, err)
			}
		}
		select {
		case <-s.done:
			err := fmt.Errorf("starting podman service on %s: %v: %s", o.Root, s.err, s.out.lastLine())
			os.RemoveAll(dir)
			return nil, err
		case <-ctx.Done():
			s.Stop()
			return nil, fmt.Errorf("starting podman service: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("starting podman service on %s: no socket after %v: %s", o.Root, startTimeout, s.out.lastLine())
		}
	}
}

// Stop ends the service (SIGTERM, then SIGKILL) and removes its private directories.
func (s *service) Stop() {
	if s == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	os.RemoveAll(s.dir)
}

// tail keeps the end of the service's output for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 8192 {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-4096:]...)
	}
	return len(p), nil
}

// lastLine returns the service's last non-empty output line.
func (t *tail) lastLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(t.buf)), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return l
	}
	return "(no output)"
}
