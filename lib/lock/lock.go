// Package lock is the one writer lock of a physical root.
//
// Every command that changes a physical root (fetch, stage, switch, rollback,
// finalize, cleanup, install) holds an exclusive flock(2) on a single lock file
// for its whole run. flock is tied to the open file description, so the kernel
// drops it when the holder closes the file or dies; there is no stale lock to
// clean up after a crash.
//
// Readers never take this lock: status must answer at once even while an
// upgrade runs for minutes. They stay correct because every state file is
// replaced atomically (written to a temporary file, fsynced, renamed), so a
// reader sees either the old or the new file, never a half-written one.
package lock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrBusy means another writer holds the lock.
var ErrBusy = errors.New("another bootc operation is in progress")

// pollInterval is how often a waiting writer retries. Acquire polls with
// LOCK_NB rather than blocking in flock(2), because a blocked flock cannot be
// interrupted when ctx is cancelled.
var pollInterval = 100 * time.Millisecond

// maxHolderLen bounds how much of the lock file is read back; the holder
// record is one short line.
const maxHolderLen = 256

// Options tune Acquire.
type Options struct {
	// Operation is a short name of what the writer is doing (for example
	// "upgrade"); it is recorded in the lock file so a waiting writer can
	// say who holds the lock.
	Operation string
	// Wait is how long to wait for another writer to finish; 0 fails at
	// once with ErrBusy.
	Wait time.Duration
	// Notify, if set, is called once when Acquire has to wait, with a
	// message naming the holder.
	Notify func(msg string)
}

// Lock is a held writer lock.
type Lock struct {
	f *os.File
	// inherited: the lock belongs to the parent process, which passed it down; releasing it here
	// only closes this process's descriptor.
	inherited bool
}

// EnvFD names the environment variable through which a writer hands its lock to the step tools
// it runs (the `bootc` front running fetch and stage). flock belongs to the open file
// description, so an inherited descriptor holds the same lock.
const EnvFD = "BOOTC_LOCK_FD"

// Handoff lets cmd share the held lock: the locked file is passed as an extra descriptor and
// named in cmd's environment, where Acquire in the child finds it instead of waiting on its parent.
func (l *Lock) Handoff(cmd *exec.Cmd) {
	cmd.ExtraFiles = append(cmd.ExtraFiles, l.f)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", EnvFD, 2+len(cmd.ExtraFiles)))
}

// inheritedLock returns the lock passed down by a parent for path, if any.
func inheritedLock(path string) (*Lock, error) {
	v := os.Getenv(EnvFD)
	if v == "" {
		return nil, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q is not an inherited file descriptor", EnvFD, v)
	}
	var held, want unix.Stat_t
	if err := unix.Fstat(fd, &held); err != nil {
		return nil, fmt.Errorf("%s=%d: %w", EnvFD, fd, err)
	}
	if err := unix.Stat(path, &want); err != nil || held.Dev != want.Dev || held.Ino != want.Ino {
		return nil, fmt.Errorf("%s=%d does not refer to the lock %s", EnvFD, fd, path)
	}
	return &Lock{f: os.NewFile(uintptr(fd), path), inherited: true}, nil
}

// Acquire takes the exclusive writer lock on path, creating the file with
// mode 0600 if it is missing (its directory must exist). When another writer
// holds it, Acquire retries every 100ms until opts.Wait elapses (then it
// fails with an error wrapping ErrBusy that names the holder) or ctx is done
// (then it returns an error wrapping ctx.Err()).
func Acquire(ctx context.Context, path string, opts Options) (*Lock, error) {
	if err := validOperation(opts.Operation); err != nil {
		return nil, err
	}
	if opts.Wait < 0 {
		return nil, fmt.Errorf("lock wait is negative: %v", opts.Wait)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("acquiring lock %s: %w", path, err)
	}
	if l, err := inheritedLock(path); l != nil || err != nil {
		return l, err
	}
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	if err := wait(ctx, f, opts); err != nil {
		f.Close()
		return nil, err
	}
	if err := writeHolder(f, opts.Operation); err != nil {
		f.Close()
		return nil, fmt.Errorf("recording lock holder in %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock and closes the file. Calling it again does nothing.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	if l.inherited {
		// Unlocking here would unlock the parent's open file description too.
		if err := f.Close(); err != nil {
			return fmt.Errorf("releasing lock %s: %w", f.Name(), err)
		}
		return nil
	}
	// Clear the record while still holding the lock so a later writer that
	// finds the lock taken by someone who has not yet written never reports
	// this process as the holder.
	truncErr := f.Truncate(0)
	unlockErr := unix.Flock(int(f.Fd()), unix.LOCK_UN)
	closeErr := f.Close()
	if err := errors.Join(truncErr, unlockErr, closeErr); err != nil {
		return fmt.Errorf("releasing lock %s: %w", f.Name(), err)
	}
	return nil
}

func validOperation(op string) error {
	switch {
	case op == "":
		return errors.New("lock operation name is empty")
	case len(op) > 64:
		return fmt.Errorf("lock operation name is longer than 64 bytes: %q", op)
	case strings.ContainsFunc(op, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("lock operation name contains control characters: %q", op)
	}
	return nil
}

func open(path string) (*os.File, error) {
	// O_NOFOLLOW: the holder truncates and writes this file as root, so a
	// symlink planted in its place must not redirect that write. os.OpenFile
	// also sets O_CLOEXEC, so helpers bootc executes (podman, dracut) do not
	// inherit the descriptor and keep the lock alive after bootc exits.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("opening lock file %s: not a regular file (%v)", path, fi.Mode().Type())
	}
	return f, nil
}

// tryLock reports whether the lock was taken; false means another open file
// description holds it.
func tryLock(f *os.File) (bool, error) {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, unix.EWOULDBLOCK):
			return false, nil
		case errors.Is(err, unix.EINTR):
			continue
		default:
			return false, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
	}
}

func wait(ctx context.Context, f *os.File, opts Options) error {
	ok, err := tryLock(f)
	if err != nil || ok {
		return err
	}
	if opts.Wait == 0 {
		return fmt.Errorf("%w (%s)", ErrBusy, holder(f))
	}
	if opts.Notify != nil {
		opts.Notify(fmt.Sprintf("waiting for another bootc operation to finish (%s)", holder(f)))
	}
	deadline := time.NewTimer(opts.Wait)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for lock %s: %w", f.Name(), ctx.Err())
		case <-deadline.C:
			// One last try: the holder may have released between ticks.
			ok, err := tryLock(f)
			if err != nil || ok {
				return err
			}
			return fmt.Errorf("%w (%s)", ErrBusy, holder(f))
		case <-tick.C:
			ok, err := tryLock(f)
			if err != nil || ok {
				return err
			}
		}
	}
}

// writeHolder records "<pid> <operation>" for writers that find the lock taken.
func writeHolder(f *os.File, op string) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+op+"\n"), 0)
	return err
}

// holder describes the current holder as "pid 1234: upgrade". The record may
// be missing or stale for the instant between another writer taking the lock
// and writing it, which only costs a vaguer message.
func holder(f *os.File) string {
	buf := make([]byte, maxHolderLen)
	n, err := f.ReadAt(buf, 0)
	if n == 0 && err != nil {
		return "holder unknown"
	}
	line, _, _ := strings.Cut(string(buf[:n]), "\n")
	pid, op, _ := strings.Cut(line, " ")
	if p, err := strconv.Atoi(pid); err != nil || p <= 0 || validOperation(op) != nil {
		return "holder unknown"
	}
	return "pid " + pid + ": " + op
}
