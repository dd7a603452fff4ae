package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
	"gobootc.dev/lib/sysroottest"
)

// stick makes a filesystem image labelled like an update stick from the files under dir and
// attaches it to a loop device.
func stick(t *testing.T, label string, fill func(dir string)) string {
	t.Helper()
	dir := t.TempDir()
	content := filepath.Join(dir, "content")
	os.MkdirAll(content, 0o755)
	fill(content)
	img := filepath.Join(dir, "stick.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-L", label, "-d", content, img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v\n%s", err, out)
	}
	out, err := exec.Command("losetup", "-f", "--show", img).Output()
	if err != nil {
		envtest.Missing(t, "a loop device: losetup: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	return dev
}

func TestOfflineUpdate(t *testing.T) {
	needRoot(t)
	h := sysroottest.NewHost(t, nil)
	record.Remove(h.Root.Staged())
	env := hostEnv(t, h)
	dev := stick(t, "BOOTC-UPDATE", func(dir string) {
		if _, err := fetchtest.WriteLayout(filepath.Join(dir, "os.oci"), "latest", osImage("7", map[string]string{"motd": "usb\n"}, `"console=ttyS0"`)); err != nil {
			t.Fatal(err)
		}
	})
	r := bootc(t, 0, env, "offline-update", "--device", dev)
	if r.code != 0 {
		t.Fatalf("offline update: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	hs, err := status.Build(status.Options{Root: h.Root})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(h.Root.Run, "offline-update", "os.oci") + ":latest"
	if version(hs.Status.Staged) != "7" || hs.Spec.Image == nil || hs.Spec.Image.Transport != "oci" || hs.Spec.Image.Image != want {
		t.Fatalf("after the offline update: staged %s, spec %+v", version(hs.Status.Staged), hs.Spec.Image)
	}
	// The stick was mounted only in the update's own namespace: nothing is left mounted here.
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), "offline-update") {
		t.Error("the stick is still mounted")
	}
	// The same stick again: the source is already tracked and staged, nothing new happens.
	if r := bootc(t, 0, env, "offline-update", "--device", dev); r.code != 0 {
		t.Fatalf("second run: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if hs2, _ := status.Build(status.Options{Root: h.Root}); hs2.Status.Staged == nil || hs2.Status.Staged.Image.ImageDigest != hs.Status.Staged.Image.ImageDigest {
		t.Error("the second run changed the staged deployment")
	}
}

func TestOfflineUpdateRefusesBadSticks(t *testing.T) {
	needRoot(t)
	cases := map[string]struct {
		fill func(dir string)
		want string
	}{
		"no layout": {func(dir string) { os.WriteFile(filepath.Join(dir, "README"), []byte("hi"), 0o644) }, "no OCI image layout"},
		"two layouts": {func(dir string) {
			for _, n := range []string{"a", "b"} {
				fetchtest.WriteLayout(filepath.Join(dir, n), "latest", osImage("8", nil, `"x"`))
			}
		}, "several OCI image layouts"},
		"not bootable": {func(dir string) {
			img := fetchtest.Image{Layers: []fetchtest.Layer{{Files: []fetchtest.File{{Path: "etc/hostname", Data: []byte("x\n")}}}}}
			fetchtest.WriteLayout(filepath.Join(dir, "os.oci"), "latest", img)
		}, "unusable as a deployment"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			h := sysroottest.NewHost(t, nil)
			env := hostEnv(t, h)
			before, _ := os.ReadFile(h.Root.Staged())
			r := bootc(t, 0, env, "offline-update", "--device", stick(t, "BOOTC-UPDATE", c.fill))
			if r.code == 0 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, stderr %q, want %q", r.code, r.stderr, c.want)
			}
			after, _ := os.ReadFile(h.Root.Staged())
			if string(before) != string(after) {
				t.Error("a refused stick changed the staged deployment")
			}
			if _, err := status.Load(status.Options{Root: h.Root}); err != nil {
				t.Errorf("status after a refused stick: %v", err)
			}
		})
	}
}
