package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gobootc.dev/lib/assess"
	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/sysroottest"
)

var loaders = []assess.Loader{assess.SystemdBoot, assess.GRUB}

const failingCheck = "etc/greenboot/check/required.d/50-app.sh"

// updated is a host booted into aaaa.0 that finalized bbbb.0 with 2 tries, as finalize leaves it.
func updated(t *testing.T, loader assess.Loader) *host {
	h := newLoaderHost(t, loader)
	h.Deploy("bbbb.0", "2")
	h.WriteSet(2, "bbbb.0", "aaaa.0")
	return h
}

// rebootFile is where the test's reboot command leaves its trace.
func (h *host) rebootFile() string { return filepath.Join(h.out, "rebooted") }

// redRun runs `red` with a reboot command that leaves a file, and reports whether it rebooted.
func (h *host) redRun(t *testing.T) (stdout string, rebooted bool) {
	t.Helper()
	os.Remove(h.rebootFile())
	stdout, stderr, code := h.run(t, nil, nil, "red", "--root", h.root, "--reboot-command", "touch "+h.rebootFile())
	if code != 0 {
		t.Fatalf("red: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	_, err := os.Stat(h.rebootFile())
	return stdout, err == nil
}

// failedTry boots, runs the checks (RED) and red, which must reboot.
func (h *host) failedTry(t *testing.T, left int) {
	t.Helper()
	if got := h.PowerOn(""); got != "bbbb.0" {
		t.Fatalf("the try booted %s", got)
	}
	if _, stderr, code := h.run(t, nil, nil, "check", "--root", h.root); code != 1 {
		t.Fatalf("check: exit %d, want 1 (RED): %s", code, stderr)
	}
	stdout, rebooted := h.redRun(t)
	if !rebooted {
		t.Fatalf("red did not reboot a deployment on trial:\n%s", stdout)
	}
	rec, err := record.ReadHealth(h.Root.Health())
	if err != nil || rec.Assessment == nil || rec.Assessment.Action != "reboot" || rec.Assessment.TriesLeft == nil || *rec.Assessment.TriesLeft != left {
		t.Fatalf("record after red: %+v, %v", rec.Assessment, err)
	}
	motd := readFile(t, filepath.Join(h.root, "run/motd.d/boot-status"))
	for _, want := range []string{"Failed check: /" + failingCheck, "    app is not ready\n", "Tries left for this deployment: " + string(rune('0'+left)) + "\n", "Rebooting..."} {
		if !strings.Contains(motd, want) {
			t.Errorf("login message lacks %q:\n%s", want, motd)
		}
	}
}

// An update whose required check fails reboots by itself on each try; the boot loader then falls
// back, and the fallback boot makes that permanent: the failed image is recorded with the check
// and its last lines, the entries name the booted deployment first and the failed one as the
// rollback (there is nothing else), and no trial is left anywhere. A RED fallback boot stays up.
func TestFailedCheckFallsBack(t *testing.T) {
	for _, loader := range loaders {
		t.Run(string(loader), func(t *testing.T) {
			h := updated(t, loader)
			h.file(t, failingCheck, 0o644, "echo starting app\necho app is not ready\nexit 1\n")
			h.failedTry(t, 1)
			h.failedTry(t, 0)
			if got := h.PowerOn(""); got != "aaaa.0" {
				t.Fatalf("after the tries %s booted", got)
			}
			// The old deployment has its own checks; one of them fails too.
			os.Remove(filepath.Join(h.root, failingCheck))
			h.file(t, "etc/greenboot/check/required.d/60-other.sh", 0o644, "echo disk full\nexit 2\n")
			stdout, stderr, code := h.run(t, nil, nil, "check", "--root", h.root)
			if code != 1 {
				t.Fatalf("check: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			reason := "never reached a healthy boot in 2 tries: required check /" + failingCheck + " failed (exit code '1')"
			want := "FALLBACK BOOT DETECTED! Default bootc deployment has been rolled back: default/bbbb.0 (" + sysroottest.Digest('b') + ") " + reason + "; default/aaaa.0 boots from now on.\n"
			if !strings.Contains(stdout, want) || strings.Contains(stderr, "warning") {
				t.Errorf("stdout lacks %q:\n%s\nstderr:\n%s", want, stdout, stderr)
			}
			failed, err := record.ReadFailedImages(h.Root, "default")
			if err != nil || len(failed.Images) != 1 {
				t.Fatalf("failed images %+v, %v", failed, err)
			}
			fi := failed.Images[0]
			if fi.ManifestDigest != sysroottest.Digest('b') || fi.Image != sysroottest.Image || fi.ID != "bbbb.0" || fi.Tries != 2 ||
				fi.Reason != reason || fi.Check != "/"+failingCheck || !slices.Equal(fi.LastLines, []string{"starting app", "app is not ready"}) {
				t.Errorf("failed image %+v", fi)
			}
			if got := h.BootOrder(); got != "aaaa.0,bbbb.0" {
				t.Errorf("boot order %s, want the failed deployment kept as the only rollback", got)
			}
			for _, e := range h.Entries() {
				if bootcount.ParseName(e).Counted {
					t.Errorf("entry %s still counted", e)
				}
			}
			if trial, counter, _ := h.GrubEnv(); trial != "" || counter != "" {
				t.Errorf("grubenv still on trial: bootc_trial=%q boot_counter=%q", trial, counter)
			}
			motd := readFile(t, filepath.Join(h.root, "run/motd.d/boot-status"))
			for _, want := range []string{
				"FALLBACK BOOT DETECTED! Default bootc deployment has been rolled back.\nDeployment default/bbbb.0 (" + sysroottest.Image + "@" + sysroottest.Digest('b') + ") " + reason + ".\n",
				"Last lines of its output:\n    starting app\n    app is not ready\n",
				"Boot Status is RED - Health Check FAILURE!\nFailed check: /etc/greenboot/check/required.d/60-other.sh",
			} {
				if !strings.Contains(motd, want) {
					t.Errorf("login message lacks %q:\n%s", want, motd)
				}
			}

			// RED on the fallback boot: nothing better to fall back to.
			stdout, rebooted := h.redRun(t)
			if rebooted || !strings.Contains(stdout, "SYSTEM is UNHEALTHY, but a reboot would not help: this boot is the fallback from default/bbbb.0, and there is nothing better to fall back to. Manual intervention necessary.") {
				t.Errorf("red on the fallback boot: rebooted %v\n%s", rebooted, stdout)
			}
			if motd := readFile(t, filepath.Join(h.root, "run/motd.d/boot-status")); !strings.HasPrefix(motd, "FALLBACK BOOT DETECTED!") {
				t.Errorf("red's login message lost the fallback:\n%s", motd)
			}

			// The next boot is the old deployment's, with nothing left to make permanent.
			if got := h.PowerOn(""); got != "aaaa.0" {
				t.Fatalf("the boot after the fallback: %s", got)
			}
			stdout, _, _ = h.run(t, nil, nil, "check", "--root", h.root)
			if strings.Contains(stdout, "FALLBACK") {
				t.Errorf("a second fallback:\n%s", stdout)
			}
		})
	}
}

// A kernel that panics never reaches the checks: the boot loader counts the resets alone. The
// fallback says no check ran, and with another deployment left (a pinned one) the failed one is
// no rollback.
func TestPanicFallsBackWithoutRollbackToIt(t *testing.T) {
	for _, loader := range loaders {
		t.Run(string(loader), func(t *testing.T) {
			h := newLoaderHost(t, loader)
			h.Deploy("pppp.0", "0", func(d *record.Deployment) { d.Pinned = true })
			h.WriteSet(0, "aaaa.0", "pppp.0")
			h.Deploy("bbbb.0", "2")
			h.WriteSet(2, "bbbb.0", "aaaa.0", "pppp.0")
			for range 2 {
				if got := h.PowerOn(""); got != "bbbb.0" {
					t.Fatalf("try booted %s", got)
				}
			}
			if got := h.PowerOn(""); got != "aaaa.0" {
				t.Fatalf("fallback booted %s", got)
			}
			stdout, stderr, code := h.run(t, nil, nil, "check", "--root", h.root)
			if code != 0 || !strings.Contains(stdout, "FALLBACK BOOT DETECTED!") {
				t.Fatalf("check: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			if got := h.BootOrder(); got != "aaaa.0,pppp.0" {
				t.Errorf("boot order %s, want the pinned deployment as the rollback and the failed one gone", got)
			}
			fi, err := record.LookupFailedImage(h.Root, "default", sysroottest.Digest('b'))
			if err != nil || fi == nil || fi.Reason != "never reached a healthy boot in 2 tries (no health check ran: the kernel or initramfs failed)" || fi.Check != "" {
				t.Errorf("failed image %+v, %v", fi, err)
			}
		})
	}
}

// A person who picks the old deployment in the menu while the update has tries left gets no
// fallback, and a RED boot there does not reboot: the old deployment is not on trial.
func TestManualPickIsNoFallback(t *testing.T) {
	for _, loader := range loaders {
		t.Run(string(loader), func(t *testing.T) {
			h := updated(t, loader)
			h.PowerOn("")
			h.PowerOn("aaaa.0")
			h.file(t, failingCheck, 0o644, "exit 1\n")
			stdout, _, code := h.run(t, nil, nil, "check", "--root", h.root)
			if code != 1 || strings.Contains(stdout, "FALLBACK") {
				t.Fatalf("check: exit %d\n%s", code, stdout)
			}
			if stdout, rebooted := h.redRun(t); rebooted {
				t.Errorf("red rebooted a deployment not on trial:\n%s", stdout)
			}
			if got := h.BootOrder(); got != "bbbb.0,aaaa.0" {
				t.Errorf("boot order %s changed", got)
			}
			if failed, _ := record.ReadFailedImages(h.Root, "default"); len(failed.Images) != 0 {
				t.Errorf("failed images %+v", failed.Images)
			}
		})
	}
}

// A GREEN try is blessed: the entry loses its counter, GRUB's trial ends with boot_success=1,
// the journal and the login message say so, the green hooks see the record, and an image that had
// failed before is no longer refused.
func TestBless(t *testing.T) {
	for _, loader := range loaders {
		t.Run(string(loader), func(t *testing.T) {
			h := updated(t, loader)
			if err := record.AddFailedImage(h.Root, "default", record.FailedImage{ManifestDigest: sysroottest.Digest('b'), ID: "bbbb.9", Reason: "earlier"}); err != nil {
				t.Fatal(err)
			}
			h.file(t, "etc/greenboot/check/wanted.d/10-flaky.sh", 0o644, "exit 1\n")
			h.file(t, "etc/greenboot/green.d/50_green.sh", 0o644, hook)
			h.PowerOn("")
			if _, stderr, code := h.run(t, nil, nil, "check", "--root", h.root); code != 0 {
				t.Fatalf("check: exit %d: %s", code, stderr)
			}
			stdout, stderr, code := h.run(t, nil, nil, "bless", "--root", h.root)
			if code != 0 {
				t.Fatalf("bless: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			if !strings.Contains(stdout, "Blessed deployment default/bbbb.0 ("+sysroottest.Digest('b')+"): it passed its trial") {
				t.Errorf("stdout:\n%s", stdout)
			}
			if got := h.Entries(); len(got) != 2 || bootcount.ParseName(got[0]).Counted || !strings.Contains(got[0], "bbbb.0") && loader == assess.SystemdBoot {
				t.Errorf("entries %v", got)
			}
			if got := h.BootOrder(); got != "bbbb.0,aaaa.0" {
				t.Errorf("boot order %s", got)
			}
			trial, counter, success := h.GrubEnv()
			if loader == assess.GRUB && (trial != "" || counter != "" || success != "1") {
				t.Errorf("grubenv: bootc_trial=%q boot_counter=%q boot_success=%q", trial, counter, success)
			}
			rec, err := record.ReadHealth(h.Root.Health())
			if err != nil || rec.Assessment == nil || rec.Assessment.Action != "blessed" {
				t.Fatalf("record %+v, %v", rec, err)
			}
			if got := readFile(t, filepath.Join(h.out, "record-seen-by-50_green.sh")); got != readFile(t, h.Root.Health()) {
				t.Errorf("the green hook saw %s", got)
			}
			if motd := readFile(t, filepath.Join(h.root, "run/motd.d/boot-status")); !strings.Contains(motd, "Deployment default/bbbb.0 passed its trial") {
				t.Errorf("login message:\n%s", motd)
			}
			if fi, err := record.LookupFailedImage(h.Root, "default", sysroottest.Digest('b')); fi != nil || err != nil {
				t.Errorf("the image that booted well is still a failed one: %+v, %v", fi, err)
			}
			// The boot after it is no trial.
			h.PowerOn("")
			if s := h.Load(); s.Trial || s.CountedBoot {
				t.Errorf("after blessing: %+v", s)
			}
		})
	}
}

// systemd-bless-boot may rename the entry before bless runs: the trial is still over, and said.
func TestBlessAfterSystemdBlessBoot(t *testing.T) {
	h := updated(t, assess.SystemdBoot)
	h.PowerOn("")
	h.SystemdBlessBoot()
	if _, _, code := h.run(t, nil, nil, "check", "--root", h.root); code != 0 {
		t.Fatal("check failed")
	}
	stdout, stderr, code := h.run(t, nil, nil, "bless", "--root", h.root)
	if code != 0 || !strings.Contains(stdout, "Blessed deployment default/bbbb.0") {
		t.Errorf("bless: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

// A unit ordered before boot-complete.target failed (OnFailure=redboot.target) while the checks
// passed: red reboots a deployment on trial all the same, and says why.
func TestRedFromAUnit(t *testing.T) {
	h := updated(t, assess.GRUB)
	h.PowerOn("")
	if _, _, code := h.run(t, nil, nil, "check", "--root", h.root); code != 0 {
		t.Fatal("check failed")
	}
	stdout, rebooted := h.redRun(t)
	if !rebooted || !strings.Contains(stdout, "SYSTEM is UNHEALTHY. Rebooting... (deployment default/bbbb.0 is on trial with 1 try left; then default/aaaa.0 boots)") {
		t.Errorf("rebooted %v\n%s", rebooted, stdout)
	}
	rec, err := record.ReadHealth(h.Root.Health())
	if err != nil || rec.Verdict != record.Red || rec.Failed != "" {
		t.Errorf("record %+v, %v", rec, err)
	}
	if motd := readFile(t, filepath.Join(h.root, "run/motd.d/boot-status")); !strings.Contains(motd, "A unit ordered before boot-complete.target failed") {
		t.Errorf("login message:\n%s", motd)
	}
	// The next boot that falls back names the unit as the reason.
	h.PowerOn("")
	h.PowerOn("")
	stdout, _, _ = h.run(t, nil, nil, "check", "--root", h.root)
	if !strings.Contains(stdout, "its health checks passed, but a unit ordered before boot-complete.target failed") {
		t.Errorf("fallback:\n%s", stdout)
	}
}

// On a booted host the physical root is a read-only mount: the fallback and the blessing are
// written by children in a private mount namespace, under the writer lock, and the host's view
// stays read-only.
func TestWritersOnReadOnlySysroot(t *testing.T) {
	envtest.NeedRoot(t)
	envtest.NeedTool(t, "unshare", "mount")
	readOnly := func(h *host) []string {
		return []string{"unshare", "--mount", "--propagation", "private", "sh", "-ec",
			`mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && touch "$0/x" 2>/dev/null && exit 9; exec "$@"`, h.Root.Phys}
	}
	t.Run("fallback", func(t *testing.T) {
		h := updated(t, assess.GRUB)
		for range 3 {
			h.PowerOn("")
		}
		stdout, stderr, code := h.run(t, nil, readOnly(h), "check", "--root", h.root)
		if code != 0 || strings.Contains(stderr, "warning") || !strings.Contains(stdout, "FALLBACK BOOT DETECTED!") {
			if strings.Contains(stderr, "mount:") {
				envtest.Missing(t, "bind mounts in a private mount namespace: %s", stderr)
			}
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if got := h.BootOrder(); got != "aaaa.0,bbbb.0" {
			t.Errorf("boot order %s", got)
		}
		if fi, err := record.LookupFailedImage(h.Root, "default", sysroottest.Digest('b')); fi == nil || err != nil {
			t.Errorf("failed image %+v, %v", fi, err)
		}
		if trial, counter, _ := h.GrubEnv(); trial != "" || counter != "" {
			t.Errorf("grubenv: %q %q", trial, counter)
		}
	})
	t.Run("bless", func(t *testing.T) {
		h := updated(t, assess.SystemdBoot)
		h.PowerOn("")
		if _, stderr, code := h.run(t, nil, readOnly(h), "check", "--root", h.root); code != 0 {
			t.Fatalf("check: %s", stderr)
		}
		stdout, stderr, code := h.run(t, nil, readOnly(h), "bless", "--root", h.root)
		if code != 0 || strings.Contains(stderr, "warning") || !strings.Contains(stdout, "Blessed deployment") {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
		}
		if got := h.Entries()[0]; bootcount.ParseName(got).Counted {
			t.Errorf("entry %s still counted", got)
		}
		kept, err := record.ReadHealth(h.Root.DeploymentHealth("default", "bbbb.0"))
		if err != nil || kept.Assessment == nil || kept.Assessment.Action != "blessed" {
			t.Errorf("kept record %+v, %v", kept, err)
		}
	})
}
