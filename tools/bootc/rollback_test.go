package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/failpoint"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
	"gobootc.dev/lib/sysroottest"
)

func hostEnv(t *testing.T, h *sysroottest.Host) []string {
	return []string{"BOOTC_SKIP_CONTAINER_CHECK=1", "BOOTC_SYSROOT=" + h.Root.Phys, "BOOTC_RUN_DIR=" + h.Root.Run,
		"BOOTC_REBOOT_REQUIRED=" + filepath.Join(t.TempDir(), "reboot-required")}
}

func TestRollbackTwiceReverts(t *testing.T) {
	needRoot(t)
	h := sysroottest.NewHost(t, nil)
	env := hostEnv(t, h)
	r := bootc(t, 0, env, "rollback")
	if r.code != 0 || !strings.Contains(r.stdout, "Next boot: rollback deployment") || !strings.Contains(r.stdout, "Discarded staged deployment default/cccc.0") {
		t.Fatalf("first rollback: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := h.BootOrder(); got != "aaaa.0,bbbb.0" {
		t.Errorf("boot order %s after rollback", got)
	}
	if _, err := record.ReadStaged(h.Root); err == nil {
		t.Error("staged deployment not discarded")
	}
	hs, err := status.Build(status.Options{Root: h.Root})
	if err != nil || !hs.Status.RollbackQueued || hs.Spec.BootOrder != "rollback" || hs.Status.Staged != nil {
		t.Errorf("status after rollback: %+v %v", hs, err)
	}
	if b, err := os.ReadFile(env[3][len("BOOTC_REBOOT_REQUIRED="):]); err != nil || !strings.Contains(string(b), sysroottest.Digest('a')) {
		t.Errorf("reboot-required: %q %v", b, err)
	}
	// /etc is not merged: each deployment keeps its own.
	if b, _ := os.ReadFile(filepath.Join(h.Root.Etc("default", "aaaa.0"), "hostname")); string(b) != "image\n" {
		t.Errorf("rollback's /etc changed: %q", b)
	}

	r = bootc(t, 0, env, "rollback")
	if r.code != 0 || !strings.Contains(r.stdout, "Next boot: current deployment") {
		t.Fatalf("second rollback: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if got := h.BootOrder(); got != "bbbb.0,aaaa.0" {
		t.Errorf("boot order %s after reverting", got)
	}
	if hs, _ := status.Build(status.Options{Root: h.Root}); hs.Status.RollbackQueued {
		t.Error("rollback still queued after reverting")
	}
}

// A rollback is not counted unless asked: its target booted well before. With --trial it is,
// and reverting the queued rollback ends the trial again.
func TestRollbackTrial(t *testing.T) {
	needRoot(t)
	h := sysroottest.NewHost(t, nil)
	env := hostEnv(t, h)
	counted := func() string {
		set, err := bootloader.ReadSet(h.Root.Boot)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, d := range set {
			if d.Counter.Counted {
				out = append(out, fmt.Sprintf("%s+%d", d.ID, d.Counter.Left))
			}
		}
		return strings.Join(out, ",")
	}
	if r := bootc(t, 0, env, "rollback"); r.code != 0 || counted() != "" {
		t.Fatalf("plain rollback: exit %d, counted entries %q\n%s", r.code, counted(), r.stderr)
	}
	bootc(t, 0, env, "rollback")
	r := bootc(t, 0, env, "rollback", "--trial")
	if r.code != 0 || counted() != "aaaa.0+3" || !strings.Contains(r.stdout, "Boot counting: default/aaaa.0 is on trial") {
		t.Fatalf("rollback --trial: exit %d, counted entries %q\n%s%s", r.code, counted(), r.stdout, r.stderr)
	}
	if r := bootc(t, 0, env, "rollback", "--trial"); r.code != 0 || counted() != "" || h.BootOrder() != "bbbb.0,aaaa.0" {
		t.Errorf("reverting: exit %d, counted entries %q, order %s", r.code, counted(), h.BootOrder())
	}
}

func TestNoRollbackAvailable(t *testing.T) {
	needRoot(t)
	s := sysroottest.New(t)
	d := s.Deploy("aaaa.0", "1")
	s.Tree(d, sysroottest.ImageEtc, sysroottest.ImageEtc)
	s.Entries("aaaa.0")
	s.Boot("aaaa.0")
	r := bootc(t, 0, []string{"BOOTC_SKIP_CONTAINER_CHECK=1", "BOOTC_SYSROOT=" + s.Root.Phys, "BOOTC_RUN_DIR=" + s.Root.Run}, "rollback")
	oneLineError(t, r, "No rollback available")
}

func TestRollbackCrashAtEveryStep(t *testing.T) {
	needRoot(t)
	trace := filepath.Join(t.TempDir(), "trace")
	clean := sysroottest.NewHost(t, nil)
	if r := bootc(t, 0, append(hostEnv(t, clean), failpoint.Env+"_TRACE="+trace), "rollback"); r.code != 0 {
		t.Fatalf("clean run: %s", r.stderr)
	}
	data, _ := os.ReadFile(trace)
	seen := map[string]bool{}
	for _, step := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if seen[step] {
			continue
		}
		seen[step] = true
		t.Run(step, func(t *testing.T) {
			h := sysroottest.NewHost(t, nil)
			env := hostEnv(t, h)
			if r := bootc(t, 0, append(env, failpoint.Env+"="+step), "rollback"); r.code != failpoint.ExitCode {
				t.Fatalf("did not stop at %s: %d %s", step, r.code, r.stderr)
			}
			if got := h.BootOrder(); got != "bbbb.0,aaaa.0" && got != "aaaa.0,bbbb.0" {
				t.Errorf("entries after a crash at %s: %s", step, got)
			}
			if _, err := status.Load(status.Options{Root: h.Root}); err != nil {
				t.Errorf("status after a crash at %s: %v", step, err)
			}
			// Rerunning completes: either the first rollback or, if the switch already happened,
			// a revert; a third run then lands on the same side as a clean run.
			r := bootc(t, 0, env, "rollback")
			if r.code != 0 {
				t.Fatalf("rerun after a crash at %s: %s", step, r.stderr)
			}
			if strings.Contains(r.stdout, "current deployment") {
				r = bootc(t, 0, env, "rollback")
			}
			if got := h.BootOrder(); got != "aaaa.0,bbbb.0" {
				t.Errorf("after rerunning: %s", got)
			}
		})
	}
	if len(seen) < 5 {
		t.Errorf("only %d steps traced", len(seen))
	}
}
