package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/failpoint"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
	"gobootc.dev/lib/sysroottest"
)

var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "finalize-bin-")
	if err == nil {
		bin, err = sysroottest.Tools(dir, "bootc-finalize")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type host struct{ *sysroottest.Host }

func newHost(t *testing.T, v2Etc map[string]string) *host {
	return &host{sysroottest.NewHost(t, v2Etc)}
}

func (h *host) finalize(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "bootc-finalize"), args...)
	cmd.Env = append([]string{"BOOTC_SYSROOT=" + h.Root.Phys, "BOOTC_RUN_DIR=" + h.Root.Run, "PATH=/usr/bin:/bin"}, env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestFinalize(t *testing.T) {
	h := newHost(t, nil)
	out, code := h.finalize(t, nil)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, out)
	}
	if got := h.BootOrder(); got != "cccc.0,bbbb.0" {
		t.Errorf("boot order %s, want staged then booted", got)
	}
	etc := h.Root.Etc("default", h.V2.ID)
	for file, want := range map[string]string{
		"hostname": "edited-locally\n", "added-locally": "mine\n", "motd": "v2 motd\n", "new-default": "v2\n",
		"removed-locally": "<open " + filepath.Join(etc, "removed-locally") + ": no such file or directory>",
	} {
		if got := read(t, filepath.Join(etc, file)); got != want {
			t.Errorf("/etc/%s = %q, want %q", file, got, want)
		}
	}
	if _, err := record.ReadStaged(h.Root); err == nil {
		t.Error("staged record left behind")
	}
	// After the reboot into v2, v1 is the rollback and the new kernel arguments are in the entry.
	h.Boot(h.V2.ID)
	st, err := status.Load(status.Options{Root: h.Root})
	if err != nil {
		t.Fatal(err)
	}
	if st.Booted.ID != h.V2.ID || st.Rollback == nil || st.Rollback.ID != h.V1.ID {
		t.Errorf("after reboot: booted %v rollback %v", st.Booted.ID, st.Rollback)
	}
	set, _ := bootloader.ReadSet(h.Root.Boot)
	if !strings.Contains(set[0].Kargs, "new.karg") {
		t.Errorf("new entry's kargs %q", set[0].Kargs)
	}
	// Running again with nothing staged changes nothing.
	if out, code := h.finalize(t, nil); code != 0 || !strings.Contains(out, "nothing to finalize") {
		t.Errorf("second run: %d %s", code, out)
	}
}

func TestDownloadOnlyNotApplied(t *testing.T) {
	h := newHost(t, nil)
	h.Stage(h.V2.ID, true)
	out, code := h.finalize(t, nil)
	if code != 0 || !strings.Contains(out, "download-only") || h.BootOrder() != "bbbb.0,aaaa.0" {
		t.Errorf("exit %d, order %s: %s", code, h.BootOrder(), out)
	}
}

func TestConflictKeepsOldEntriesAndIsReported(t *testing.T) {
	// v2 turns hostname into a directory while it was edited locally: a conflict.
	h := newHost(t, map[string]string{"hostname/": "", "motd": "v2\n"})
	out, code := h.finalize(t, nil)
	if code == 0 || !strings.Contains(out, "hostname") {
		t.Fatalf("conflict not refused: %d %s", code, out)
	}
	if got := h.BootOrder(); got != "bbbb.0,aaaa.0" {
		t.Errorf("entries changed after a failed finalize: %s", got)
	}
	out, code = h.finalize(t, nil, "--report-failure")
	if code == 0 || !strings.Contains(out, "cccc.0") || !strings.Contains(out, "acknowledge") {
		t.Errorf("report: %d %s", code, out)
	}
	if out, code := h.finalize(t, nil, "--acknowledge"); code != 0 {
		t.Fatalf("acknowledge: %d %s", code, out)
	}
	if out, code := h.finalize(t, nil, "--report-failure"); code != 0 {
		t.Errorf("report after acknowledge: %d %s", code, out)
	}
}

// TestCrashAtEveryStep stops finalize at each step it goes through, as a power cut would, and
// checks that the boot entries are a complete old or new set and that running again finishes.
func TestCrashAtEveryStep(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace")
	clean := newHost(t, nil)
	if out, code := clean.finalize(t, []string{failpoint.Env + "_TRACE=" + trace}); code != 0 {
		t.Fatalf("clean run: %s", out)
	}
	// A step reached twice can only be stopped at its first time; the bootloader package
	// crash-tests its own steps exhaustively.
	var steps []string
	seen := map[string]bool{}
	for _, step := range strings.Split(strings.TrimSpace(read(t, trace)), "\n") {
		if !seen[step] {
			seen[step] = true
			steps = append(steps, step)
		}
	}
	if len(steps) < 8 {
		t.Fatalf("only %d steps traced: %v", len(steps), steps)
	}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			h := newHost(t, nil)
			out, code := h.finalize(t, []string{failpoint.Env + "=" + step})
			if code != failpoint.ExitCode {
				t.Fatalf("did not stop at %s: exit %d: %s", step, code, out)
			}
			if got := h.BootOrder(); got != "bbbb.0,aaaa.0" && got != "cccc.0,bbbb.0" {
				t.Errorf("after a crash at %s the entries are %s", step, got)
			}
			if _, err := status.Load(status.Options{Root: h.Root}); err != nil {
				t.Errorf("status after a crash at %s: %v", step, err)
			}
			if out, code := h.finalize(t, nil); code != 0 {
				t.Fatalf("rerun after a crash at %s: %d %s", step, code, out)
			}
			if got := h.BootOrder(); got != "cccc.0,bbbb.0" {
				t.Errorf("rerun after a crash at %s left %s", step, got)
			}
			if got := read(t, filepath.Join(h.Root.Etc("default", "cccc.0"), "hostname")); got != "edited-locally\n" {
				t.Errorf("merged hostname %q", got)
			}
		})
	}
}
