package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// install puts the image at ref (an OCI layout reference) on the root as install does, and
// boots it.
func (l *lifecycle) install(ref string) *record.Deployment {
	l.t.Helper()
	if err := l.r.Init(layout.DefaultStateroot); err != nil {
		l.t.Fatal(err)
	}
	l.tool("bootc-fetch", "--transport", "oci", ref)
	imgs, _ := filepath.Glob(filepath.Join(l.r.Images(), "*", "image.json"))
	if len(imgs) != 1 {
		l.t.Fatalf("fetched %d images", len(imgs))
	}
	var f record.FetchedImage
	if err := record.ReadJSON(imgs[0], &f); err != nil {
		l.t.Fatal(err)
	}
	l.tool("bootc-stage", "--image", f.Image.ManifestDigest, "--no-arm")
	staged, err := record.ReadStaged(l.r)
	if err != nil {
		l.t.Fatal(err)
	}
	d, err := record.ReadDeployment(l.r, staged.Stateroot, staged.ID)
	if err != nil {
		l.t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(l.r.Etc(d.Stateroot, d.ID)), 0o755)
	if out, err := exec.Command("cp", "-a", l.r.PristineEtc(d.Stateroot, d.ID), l.r.Etc(d.Stateroot, d.ID)).CombinedOutput(); err != nil {
		l.t.Fatalf("%v: %s", err, out)
	}
	if err := bootloader.WriteSet(l.r.Boot, []bootloader.Deployment{bootloader.FromRecord(d)}, bootloader.Options{NoFreeze: true}); err != nil {
		l.t.Fatal(err)
	}
	record.Remove(l.r.Staged())
	l.reboot()
	return d
}

// fakeSystemctl puts a systemctl first in $PATH that logs its arguments to the returned file,
// so that --apply's reboot is observed rather than done.
func fakeSystemctl(t *testing.T) (pathEnv, log string) {
	dir := t.TempDir()
	log = filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$*\" >>" + log + "\n"
	if err := os.WriteFile(filepath.Join(dir, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return "PATH=" + dir + ":/usr/bin:/bin", log
}

// TestFailedImageNotStaged: an image that failed to boot here is not staged by upgrade or
// switch, which succeed, say why and do not reboot with --apply; --allow-failed stages it.
// Status lists the failed image.
func TestFailedImageNotStaged(t *testing.T) {
	needRoot(t)
	l, oci := newLifecycle(t)
	r, calls, other := l.r, l.calls, filepath.Join(filepath.Dir(oci), "other")
	l.layouts(oci, map[string]string{"latest": "1"})
	l.install(oci + ":latest")

	// v2 failed to boot here before: the boot loader fell back from it.
	v2, err := fetchtest.WriteLayout(oci, "latest", osImage("2", nil, `"console=ttyS0"`))
	if err != nil {
		t.Fatal(err)
	}
	failedAt := time.Date(2026, 3, 2, 8, 5, 0, 0, time.UTC)
	const check = "/etc/greenboot/check/required.d/10-app.sh"
	if err := record.AddFailedImage(r, layout.DefaultStateroot, record.FailedImage{ManifestDigest: v2.ManifestDigest.String(),
		Image: "oci:" + oci + ":latest", ID: "gone.0", Time: failedAt, Reason: "required check failed: exit code '1'", Check: check, Tries: 2}); err != nil {
		t.Fatal(err)
	}
	refusal := "Not staging " + v2.ManifestDigest.String() + ": it failed to boot here at 2026-03-02T08:05:00Z: required check failed: exit code '1' (check " + check + "). Use --allow-failed to stage it all the same.\n"

	if res := l.bootc("upgrade", "--check"); !strings.Contains(res.stdout, "Update available") ||
		!strings.Contains(res.stdout, "Note: this image failed to boot here at 2026-03-02T08:05:00Z: required check failed: exit code '1' (check "+check+"). It is not staged without --allow-failed.\n") {
		t.Errorf("upgrade --check: stdout %q", res.stdout)
	}

	// The update timers run `bootc upgrade --apply --quiet` and `bootc upgrade --quiet`.
	for _, args := range [][]string{{"upgrade", "--apply", "--quiet"}, {"upgrade", "--quiet"}} {
		res := l.bootc(args...)
		if !strings.Contains(res.stdout, refusal) {
			t.Errorf("bootc %v: stdout %q lacks %q", args, res.stdout, refusal)
		}
		if _, err := record.ReadStaged(r); err == nil {
			t.Fatalf("bootc %v staged the failed image", args)
		}
	}
	if b, err := os.ReadFile(calls); err == nil {
		t.Errorf("--apply rebooted although nothing was staged: systemctl %s", b)
	}
	h := l.status()
	if f := h.Status.FailedUpdates; len(f) != 1 || f[0].Digest != v2.ManifestDigest.String() || f[0].Check != check || f[0].Deployment != "default/gone.0" {
		t.Errorf("status failedUpdates = %+v", f)
	}
	if hr := l.bootc("status", "--format=humanreadable"); !strings.Contains(hr.stdout, "Failed update: oci:"+oci+":latest (sha256:"+v2.ManifestDigest.Encoded()[:12]+") failed at 2026-03-02T08:05:00Z: ") {
		t.Errorf("human status:\n%s", hr.stdout)
	}

	res := l.bootc("upgrade", "--apply", "--allow-failed")
	if !strings.Contains(res.stdout, "Staging "+v2.ManifestDigest.String()+" although it failed to boot here") || version(l.status().Status.Staged) != "2" {
		t.Fatalf("upgrade --allow-failed: staged %s\n%s", version(l.status().Status.Staged), res.stdout)
	}
	if b, _ := os.ReadFile(calls); !strings.HasPrefix(string(b), "reboot") {
		t.Errorf("upgrade --apply --allow-failed: systemctl calls %q, want a reboot", b)
	}

	// switch: the same refusal, and the host keeps tracking its image.
	v3, err := fetchtest.WriteLayout(other, "stable", osImage("3", nil, `"console=ttyS0"`))
	if err != nil {
		t.Fatal(err)
	}
	record.AddFailedImage(r, layout.DefaultStateroot, record.FailedImage{ManifestDigest: v3.ManifestDigest.String(), ID: "gone.1", Time: failedAt, Reason: "never reached a healthy boot in 2 tries"})
	os.Remove(calls)
	res = l.bootc("switch", "--apply", "--transport", "oci", other+":stable")
	if !strings.Contains(res.stdout, "Not staging "+v3.ManifestDigest.String()+": it failed to boot here at 2026-03-02T08:05:00Z: never reached a healthy boot in 2 tries. Use --allow-failed") {
		t.Errorf("switch: stdout %q", res.stdout)
	}
	if h := l.status(); version(h.Status.Staged) != "2" || h.Spec.Image.Image != oci+":latest" {
		t.Errorf("after a refused switch: staged %s, tracking %+v", version(h.Status.Staged), h.Spec.Image)
	}
	if b, err := os.ReadFile(calls); err == nil {
		t.Errorf("switch --apply rebooted although nothing was staged: systemctl %s", b)
	}
	l.bootc("switch", "--allow-failed", "--transport", "oci", other+":stable")
	if h := l.status(); version(h.Status.Staged) != "3" || h.Spec.Image.Image != other+":stable" {
		t.Errorf("switch --allow-failed: staged %s, tracking %+v", version(h.Status.Staged), h.Spec.Image)
	}
}
