package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// failure is what a fixture's Fatal or Skip raises; the figure that called it fails.
type failure string

// harness lets the fixtures of lib/fetchtest, written for tests, run in this program: it
// implements the testing.TB methods they call. The embedded TB is nil, so a method it does not
// implement panics: a crash rather than a wrong figure.
type harness struct {
	testing.TB
	dir      string
	cleanups []func()
	failed   bool // an Errorf was reported
}

func (h *harness) Helper()                      {}
func (h *harness) Fatal(args ...any)            { panic(failure(fmt.Sprint(args...))) }
func (h *harness) Fatalf(f string, args ...any) { panic(failure(fmt.Sprintf(f, args...))) }
func (h *harness) Skip(args ...any)             { panic(failure(fmt.Sprint(args...))) }
func (h *harness) Skipf(f string, args ...any)  { panic(failure(fmt.Sprintf(f, args...))) }
func (h *harness) Errorf(f string, args ...any) { h.failed = true; h.Logf(f, args...) }
func (h *harness) Logf(f string, args ...any)   { fmt.Fprintf(os.Stderr, f+"\n", args...) }
func (h *harness) Cleanup(f func())             { h.cleanups = append(h.cleanups, f) }
func (h *harness) TempDir() string              { return must(os.MkdirTemp(h.dir, "fixture-")) }

// close runs the cleanups, last registered first.
func (h *harness) close() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
	h.cleanups = nil
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(failure(err.Error()))
	}
	return v
}

// catch turns a failure raised inside f into an error.
func catch(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			fl, ok := r.(failure)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%s", string(fl))
		}
	}()
	return f()
}

// runStats is what one child process cost.
type runStats struct {
	wall   time.Duration
	maxRSS int64 // bytes
}

// command runs a program to completion with extra environment, returning its wall time and
// peak resident memory. The program is started through a copy of this one (see measureChild),
// for every tool alike, so that the memory figure is the program's own.
func command(env []string, name string, args ...string) (runStats, error) {
	self, err := os.Executable()
	if err != nil {
		return runStats{}, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return runStats{}, err
	}
	defer r.Close()
	cmd := exec.Command(self, append([]string{measureArg, name}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.ExtraFiles = []*os.File{w}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		w.Close()
		return runStats{}, fmt.Errorf("running %s: %w", name, err)
	}
	w.Close()
	reported, _ := io.ReadAll(r)
	err = cmd.Wait()
	st := runStats{wall: time.Since(start)}
	if err != nil {
		return st, fmt.Errorf("running %s %s: %v: %s", name, strings.Join(args, " "), err, lastLines(out.String(), 5))
	}
	if st.maxRSS, err = strconv.ParseInt(strings.TrimSpace(string(reported)), 10, 64); err != nil {
		return st, fmt.Errorf("peak memory of %s: %q: %w", name, reported, err)
	}
	return st, nil
}

// measureArg, as the first argument, makes this program run measureChild.
const measureArg = "-measure-child"

// measureChild runs args as a command and writes the command's peak resident memory in bytes
// (from its rusage) to file descriptor 3. It exists because Go starts a child sharing the
// parent's memory map until the child execs, and Linux carries that map's high-water mark into
// the child's maxrss: a direct child of the benchmark, which holds the images in memory, would
// report the benchmark's peak. Started from this small process, the command's figure is its
// own (or this process's few MiB, whichever is larger).
func measureChild(args []string) int {
	report := os.NewFile(3, "rusage")
	if len(args) == 0 || report == nil {
		fmt.Fprintln(os.Stderr, "bench "+measureArg+": needs a command and file descriptor 3")
		return 2
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	err := cmd.Run()
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			fmt.Fprintf(report, "%d\n", ru.Maxrss*1024) // Linux reports KiB
		}
	}
	report.Close()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode()
	case err != nil:
		fmt.Fprintln(os.Stderr, err)
		return 127
	}
	return 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// diskUsage is `du -s` of dir in bytes: allocated blocks, each hardlinked inode counted once.
func diskUsage(dir string) (int64, error) {
	out, err := exec.Command("du", "-s", "-B1", dir).Output()
	if err != nil {
		return 0, fmt.Errorf("du -s %s: %w", dir, err)
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return 0, fmt.Errorf("du -s %s: no output", dir)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// median of durations; the middle one, or the lower middle of an even count.
func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[(len(s)-1)/2]
}

// flush writes back dirty pages so that one run's deferred writeback does not land inside the
// next run's measured time.
func flush() { syscall.Sync() }
