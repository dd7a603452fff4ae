package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/boundimage"
	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/failpoint"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
	"gobootc.dev/lib/sysroottest"
)

var bin string

func TestMain(m *testing.M) { sysroottest.MainWithTools(m, &bin, "bootc-finalize") }

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
	if !exists(h.Root.CleanupPending()) {
		t.Error("no cleanup pending after the entries switched")
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

// The new default goes on trial with the tries the staged deployment configures, in its entry
// name and, where GRUB boots, in grubenv; a configuration that cannot be read costs the update
// nothing: the default number applies.
func TestFinalizeArmsTrial(t *testing.T) {
	for _, tt := range []struct {
		name, dropin string
		want         int
		says         string
	}{
		{"configured", "tries = 2\n", 2, "tries: 2 (tries in "},
		{"invalid", "tries = 0\n", bootcount.DefaultTries, "warning: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHost(t, nil)
			sysroottest.Files(t, layout.BootcountVendorDir(h.Root.Deployment("default", h.V2.ID)), map[string]string{"50-test.toml": tt.dropin})
			if err := bootloader.WriteGrubConfig(h.Root.Boot, bootloader.Options{}); err != nil {
				t.Fatal(err)
			}
			out, code := h.finalize(t, nil)
			if code != 0 || !strings.Contains(out, tt.says) {
				t.Fatalf("exit %d, output %q; want it to say %q", code, out, tt.says)
			}
			set, err := bootloader.ReadSet(h.Root.Boot)
			if err != nil {
				t.Fatal(err)
			}
			if c := set[0].Counter; set[0].ID != h.V2.ID || !c.Counted || c.Left != tt.want {
				t.Errorf("new default %s (%s): counter %+v, want %d tries", set[0].ID, set[0].Entry, c, tt.want)
			}
			if set[1].Counter.Counted {
				t.Errorf("the previous deployment's entry %s is counted", set[1].Entry)
			}
			env, err := bootcount.ReadEnv(layout.GrubEnv(h.Root.Boot))
			if err != nil {
				t.Fatal(err)
			}
			trial, _ := env.Get(bootcount.VarTrial)
			if n, ok, _ := env.BootCounter(); !ok || n != tt.want || trial != "default/"+h.V2.ID {
				t.Errorf("grubenv boot_counter %d (set %v), bootc_trial %q; want %d for default/%s", n, ok, trial, tt.want, h.V2.ID)
			}
		})
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
	if exists(h.Root.CleanupPending()) {
		t.Error("a failed finalize left a cleanup pending")
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
			if !exists(h.Root.CleanupPending()) {
				t.Errorf("rerun after a crash at %s left no cleanup pending", step)
			}
			if got := read(t, filepath.Join(h.Root.Etc("default", "cccc.0"), "hostname")); got != "edited-locally\n" {
				t.Errorf("merged hostname %q", got)
			}
		})
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// finalizeAndReboot finalizes v2 and boots it, as the shutdown and the next boot would.
func (h *host) finalizeAndReboot(t *testing.T) {
	t.Helper()
	if out, code := h.finalize(t, nil); code != 0 {
		t.Fatalf("finalize: exit %d: %s", code, out)
	}
	h.Boot(h.V2.ID)
}

// deployed lists the deployments that have a record or a tree.
func (h *host) deployed(t *testing.T) string {
	t.Helper()
	var ids []string
	for _, d := range []*record.Deployment{h.V0, h.V1, h.V2} {
		rec, tree := exists(h.Root.DeploymentRecord(d.Stateroot, d.ID)), exists(h.Root.Deployment(d.Stateroot, d.ID))
		if rec || tree {
			ids = append(ids, d.ID)
		}
		if rec != tree {
			t.Errorf("deployment %s: record %v, tree %v", d.ID, rec, tree)
		}
	}
	return strings.Join(ids, ",")
}

// noTools is the environment of a cleanup that must not start bootc-bound-images.
func noTools(t *testing.T) []string {
	return []string{"BOOTC_LIBEXEC_DIR=" + t.TempDir()}
}

func TestCleanupAfterFinalize(t *testing.T) {
	h := newHost(t, nil)
	h.finalizeAndReboot(t)
	// aaaa.0 was the rollback; the new entries name cccc.0 and bbbb.0 only.
	if got := h.deployed(t); got != "aaaa.0,bbbb.0,cccc.0" {
		t.Fatalf("finalize removed deployments itself: %s", got)
	}
	out, code := h.finalize(t, noTools(t), "--cleanup")
	if code != 0 {
		t.Fatalf("cleanup: exit %d: %s", code, out)
	}
	if got := h.deployed(t); got != "bbbb.0,cccc.0" {
		t.Errorf("deployments after the cleanup: %s, want the booted and the rollback", got)
	}
	for _, want := range []string{"Garbage collection: removed 1 deployment", "Bound images: nothing to remove."} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if exists(h.Root.CleanupPending()) {
		t.Error("the cleanup pending marker survived a successful cleanup")
	}
	if got := h.BootOrder(); got != "cccc.0,bbbb.0" {
		t.Errorf("boot entries changed: %s", got)
	}
	if out, code := h.finalize(t, noTools(t), "--cleanup", "--acknowledge"); code != 2 || !strings.Contains(out, "can't be used together") {
		t.Errorf("--cleanup with --acknowledge: exit %d: %s", code, out)
	}
	// Again, with nothing left to do.
	if out, code := h.finalize(t, noTools(t), "--cleanup"); code != 0 || !strings.Contains(out, "Garbage collection: nothing to remove.") {
		t.Errorf("second cleanup: exit %d: %s", code, out)
	}
}

func TestCleanupFailureKeepsMarker(t *testing.T) {
	h := newHost(t, nil)
	h.finalizeAndReboot(t)
	// The bound storage lists an image and the tool that would collect it fails.
	sysroottest.Files(t, h.Root.BoundStorage(), map[string]string{
		"overlay-images/images.json": `[{"id":"0123456789ab","names":["localhost/app:1"]}]`,
	})
	tools := t.TempDir()
	sysroottest.Files(t, tools, map[string]string{"bootc-bound-images": "#!/bin/sh\necho cannot read a declaration >&2\nexit 4\n"})
	if err := os.Chmod(filepath.Join(tools, "bootc-bound-images"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := h.finalize(t, []string{"BOOTC_LIBEXEC_DIR=" + tools}, "--cleanup")
	if code != 4 || !strings.Contains(out, "cannot read a declaration") || !strings.Contains(out, "collecting bound images: bootc-bound-images exited with status 4") {
		t.Errorf("exit %d, want the tool's 4 and its reason:\n%s", code, out)
	}
	if !exists(h.Root.CleanupPending()) {
		t.Error("a failed cleanup removed the marker: the next boot would not try again")
	}
	// The deployments were collected all the same; only the bound images are left to do.
	if got := h.deployed(t); got != "bbbb.0,cccc.0" {
		t.Errorf("deployments after the failed cleanup: %s", got)
	}

	// A lock held by another operation: the cleanup waits, then gives up, marker kept.
	h2 := newHost(t, nil)
	h2.finalizeAndReboot(t)
	envtest.NeedTool(t, "flock")
	holder := exec.Command("flock", h2.Root.Lock(), "sleep", "30")
	if err := holder.Start(); err != nil {
		t.Fatalf("flock(1): %v", err)
	}
	defer func() { holder.Process.Kill(); holder.Wait() }()
	waitHeld(t, h2.Root.Lock())
	out, code = h2.finalize(t, noTools(t), "--cleanup", "--lock-wait", "300ms")
	if code == 0 || !strings.Contains(out, "another bootc operation is in progress") {
		t.Errorf("cleanup under a held lock: exit %d: %s", code, out)
	}
	if !exists(h2.Root.CleanupPending()) || h2.deployed(t) != "aaaa.0,bbbb.0,cccc.0" {
		t.Errorf("cleanup under a held lock changed something: marker %v, deployments %s", exists(h2.Root.CleanupPending()), h2.deployed(t))
	}
}

// waitHeld waits until another process holds the lock file.
func waitHeld(t *testing.T, path string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if err := exec.Command("flock", "-n", path, "true").Run(); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the lock was never taken")
}

// declare gives a deployment tree a bound image declaration of ref.
func declare(t *testing.T, h *host, d *record.Deployment, ref string) {
	t.Helper()
	root := h.Root.Deployment(d.Stateroot, d.ID)
	sysroottest.Files(t, root, map[string]string{
		"usr/share/containers/systemd/app.image": "[Image]\nImage=" + ref + "\n",
		boundimage.Dir + "/":                     "",
	})
	if err := os.Symlink("/usr/share/containers/systemd/app.image", filepath.Join(root, boundimage.Dir, "app.image")); err != nil {
		t.Fatal(err)
	}
}

// TestCleanupRemovesDroppedBoundImages runs the real bootc-bound-images on a storage podman
// filled: the image only the dropped deployment declared goes, the rollback's stays.
func TestCleanupRemovesDroppedBoundImages(t *testing.T) {
	sysroottest.RequirePodman(t)
	tools, err := sysroottest.Tools(t.TempDir(), "bootc-bound-images")
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t, nil)
	declare(t, h, h.V0, "localhost/dropped:1")
	declare(t, h, h.V1, "localhost/rollback:1")
	for _, ref := range []string{"localhost/dropped:1", "localhost/rollback:1"} {
		sysroottest.StoreImage(t, h.Root.BoundStorage(), ref)
	}
	h.finalizeAndReboot(t)
	// Before the reboot's cleanup, nothing is gone yet.
	if got := strings.Join(sysroottest.StoredImages(t, h.Root.BoundStorage()), " "); got != "localhost/dropped:1 localhost/rollback:1" {
		t.Fatalf("bound images after finalize: %s", got)
	}
	env := []string{"BOOTC_LIBEXEC_DIR=" + tools, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	out, code := h.finalize(t, env, "--cleanup")
	if code != 0 {
		t.Fatalf("cleanup: exit %d: %s", code, out)
	}
	if got := strings.Join(sysroottest.StoredImages(t, h.Root.BoundStorage()), " "); got != "localhost/rollback:1" {
		t.Errorf("bound images after the cleanup: %s, want the rollback's only\n%s", got, out)
	}
	if !strings.Contains(out, "Removed bound image") || !strings.Contains(out, "1 kept, 1 removed") {
		t.Errorf("output:\n%s", out)
	}
	if got := h.deployed(t); got != "bbbb.0,cccc.0" || exists(h.Root.CleanupPending()) {
		t.Errorf("deployments %s, marker %v", got, exists(h.Root.CleanupPending()))
	}
}
