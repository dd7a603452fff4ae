package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gobootc.dev/lib/record"
)

// `bootc --sysroot DIR switch …` works on DIR: the flag reaches the step tools as the
// environment variable does.
func TestSysrootFlagReachesSteps(t *testing.T) {
	needRoot(t)
	l, oci := newLifecycle(t)
	r := l.r
	l.layouts(oci, map[string]string{"latest": "1", "next": "2"})
	l.install(oci + ":latest")
	env := l.env
	l.env = slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "BOOTC_SYSROOT=") })
	l.bootc("--sysroot", r.Phys, "switch", "--transport", "oci", oci+":next")
	l.env = env
	if v := version(l.status().Status.Staged); v != "2" {
		t.Errorf("staged %q after switch with --sysroot, want 2", v)
	}
}

// switch --download-only stages without applying, as a management agent does with an image it
// rebuilt; a later switch replaces that stage, and upgrade --from-downloaded applies one.
func TestSwitchDownloadOnly(t *testing.T) {
	needRoot(t)
	l, oci := newLifecycle(t)
	l.layouts(oci, map[string]string{"latest": "1", "delta": "2", "next": "3"})
	l.install(oci + ":latest")
	staged := func(when string, wantVersion string, wantDownloadOnly bool) {
		t.Helper()
		s := l.status().Status.Staged
		if version(s) != wantVersion || s == nil || s.DownloadOnly != wantDownloadOnly {
			t.Errorf("%s: staged %q (download-only %v), want %s (download-only %v)", when, version(s), s != nil && s.DownloadOnly, wantVersion, wantDownloadOnly)
		}
	}
	l.bootc("switch", "--download-only", "--transport", "oci", oci+":delta")
	staged("switch --download-only", "2", true)
	l.bootc("switch", "--transport", "oci", oci+":next")
	staged("a later switch", "3", false)
	l.bootc("switch", "--download-only", "--transport", "oci", oci+":delta")
	staged("switch --download-only again", "2", true)
	l.bootc("upgrade", "--from-downloaded")
	staged("upgrade --from-downloaded", "2", false)
	if res := bootc(t, 0, l.env, "switch", "--apply", "--download-only", "--transport", "oci", oci+":next"); res.code != 2 {
		t.Errorf("switch --apply --download-only: exit %d, want 2 (they conflict)", res.code)
	}
}

// switch --retain keeps the image the host tracked before through every collection, listed as
// retained, until bootc image unretain lets it go and removes it.
func TestSwitchRetain(t *testing.T) {
	needRoot(t)
	l, oci := newLifecycle(t)
	r, other := l.r, filepath.Join(filepath.Dir(oci), "other")
	l.layouts(oci, map[string]string{"latest": "1"})
	l.layouts(other, map[string]string{"two": "2", "three": "3"})
	v1 := l.install(oci + ":latest")
	v1Image := r.Image(v1.Image.ManifestDigest)

	if res := l.bootc("switch", "--retain", "--transport", "oci", other+":two"); !strings.Contains(res.stdout, "Retained "+oci+":latest") {
		t.Errorf("switch --retain: stdout %q", res.stdout)
	}
	l.tool("bootc-finalize")
	l.reboot()
	l.bootc("switch", "--transport", "oci", other+":three")
	l.tool("bootc-finalize")
	l.reboot()
	l.tool("bootc-finalize", "--cleanup")
	if _, err := record.ReadDeployment(r, v1.Stateroot, v1.ID); err == nil {
		t.Fatalf("v1's deployment is still there: the scene did not collect it")
	}
	if _, err := os.Stat(v1Image); err != nil {
		t.Errorf("the retained image was collected: %v", err)
	}
	want := "oci:" + oci + ":latest"
	if res := l.bootc("image", "list", "--type", "host"); !regexp.MustCompile(regexp.QuoteMeta(want) + ` +host \(retained\)`).MatchString(res.stdout) {
		t.Errorf("image list does not show %s retained:\n%s", want, res.stdout)
	}
	if res := bootc(t, 0, l.env, "image", "unretain", "oci:/nowhere:latest"); res.code == 0 || !strings.Contains(res.stderr, "is not a retained image") {
		t.Errorf("unretain of an image never retained: exit %d, stderr %q", res.code, res.stderr)
	}
	if _, err := os.Stat(v1Image); err != nil {
		t.Errorf("a refused unretain removed the image: %v", err)
	}
	if res := l.bootc("image", "unretain", want); !strings.Contains(res.stdout, "Let go of "+want) {
		t.Errorf("unretain: stdout %q", res.stdout)
	}
	if _, err := os.Stat(v1Image); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after unretain the image is still in the store: %v", err)
	}
}
