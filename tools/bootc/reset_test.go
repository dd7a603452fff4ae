package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
)

var resetFlags = map[string]string{
	"--experimental":  "required acknowledgement",
	"--stateroot":     "stateroot reset into (default state-<year>-<serial>)",
	"--source-imgref": "image fetched and reset to instead of the booted one",
	"--target-imgref": cli.NotSupported,
	"--karg":          "kernel arguments the reset system starts with",
	"--no-root-kargs": "the booted root arguments not carried over",
	"--quiet":         "bootc-fetch --quiet: no progress",
	"--apply":         "systemctl reboot once the reset is staged",
	"--progress-fd":   "bootc-fetch --progress-fd",
}

func TestInstallResetFlags(t *testing.T) {
	for _, p := range cli.CheckFlagTable("bootc install reset", func() any { return &InstallResetCmd{} }, resetFlags) {
		t.Error(p)
	}
	missing, err := cli.MissingFlags(&InstallResetCmd{}, map[string][]string{"": {"experimental", "stateroot", "source-imgref",
		"target-imgref", "karg", "no-root-kargs", "quiet", "apply", "progress-fd"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range missing {
		t.Errorf("upstream's install reset %s is not in the grammar", key)
	}
}

// A factory reset stages the booted image into a new stateroot: the next boot starts from the
// image's /etc and an empty /var with the booted root arguments and nothing else carried over,
// while the old stateroot keeps its /etc and /var and stays in the boot entries.
func TestInstallReset(t *testing.T) {
	needRoot(t)
	l, oci := newLifecycle(t)
	r := l.r
	l.layouts(oci, map[string]string{"latest": "1"})
	v1 := l.install(oci + ":latest")
	v1.Kargs = "root=UUID=1234 rw console=ttyS0 install.karg=1"
	if err := record.WriteDeployment(r, v1); err != nil {
		t.Fatal(err)
	}
	bootLine := "UUID=ABCD-1234 /sysroot/boot vfat umask=0077 0 2\n"
	if err := os.WriteFile(filepath.Join(r.Etc(v1.Stateroot, v1.ID), "fstab"), []byte("/dev/sdb1 /srv ext4 defaults 0 2\n"+bootLine), 0o644); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(r.Etc(v1.Stateroot, v1.ID), "local.conf")
	mark := filepath.Join(r.Var(v1.Stateroot), "lib", "mark")
	for _, p := range []string{local, mark} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("mine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	if res := bootc(t, 0, l.env, "install", "reset"); res.code != 2 || !strings.Contains(res.stderr, "--experimental") {
		t.Errorf("reset without --experimental: exit %d, stderr %q", res.code, res.stderr)
	}
	want := "state-" + time.Now().Format("2006") + "-0"
	if res := l.bootc("install", "reset", "--experimental", "--karg", "quiet"); !strings.Contains(res.stdout, "Reset staged into stateroot "+want) {
		t.Fatalf("reset: stdout %q", res.stdout)
	}
	st, err := status.Load(status.Options{Root: r, Cmdline: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Staged == nil || st.Staged.Stateroot != want || st.Staged.Image.ManifestDigest != v1.Image.ManifestDigest {
		t.Fatalf("staged %+v, want the booted image in %s", st.Staged, want)
	}
	if got := st.Staged.Kargs; !strings.Contains(got, "root=UUID=1234") || !strings.Contains(got, "rw") ||
		!strings.Contains(got, "quiet") || strings.Contains(got, "install.karg") {
		t.Errorf("reset kargs %q: want the root arguments, --karg and the image's, not the old install's", got)
	}
	if out := l.tool("bootc-finalize"); !strings.Contains(out, "New stateroot "+want) {
		t.Errorf("finalize: %s", out)
	}
	if id := l.reboot(); id != st.Staged.ID {
		t.Fatalf("booted %s after the reset, want %s", id, st.Staged.ID)
	}
	newEtc := r.Etc(want, st.Staged.ID)
	if _, err := os.Stat(filepath.Join(newEtc, "local.conf")); !os.IsNotExist(err) {
		t.Errorf("the new stateroot's /etc has the old local file: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(newEtc, "fstab")); err != nil || string(b) != bootLine {
		t.Errorf("the new stateroot's fstab = %q, %v; want only the boot partition's mount %q", b, err, bootLine)
	}
	for _, p := range []string{local, mark} {
		if b, err := os.ReadFile(p); err != nil || string(b) != "mine\n" {
			t.Errorf("%s in the old stateroot: %q, %v", p, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(r.Var(want), "lib", "mark")); !os.IsNotExist(err) {
		t.Errorf("the new /var holds the old one's data: %v", err)
	}
	h := l.status()
	if h.Status.Booted == nil || h.Status.Staged != nil {
		t.Errorf("after the reboot: booted %v, staged %v", h.Status.Booted, h.Status.Staged)
	}
	if res := bootc(t, 0, l.env, "install", "reset", "--experimental", "--stateroot", want); res.code != 2 || !strings.Contains(res.stderr, "is the booted one") {
		t.Errorf("reset into the booted stateroot: exit %d, stderr %q", res.code, res.stderr)
	}
}
