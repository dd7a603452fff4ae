package deploy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/deploy"
	dt "gobootc.dev/lib/deploy/deploytest"
	"gobootc.dev/lib/etcmerge"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/store"
)

const sr = layout.DefaultStateroot

func newRoot(t *testing.T) layout.Root {
	dir := t.TempDir()
	r := layout.New(filepath.Join(dir, "phys"), filepath.Join(dir, "run"))
	if err := r.Init(sr); err != nil {
		t.Fatal(err)
	}
	return r
}

func build(t *testing.T, r layout.Root, image string, merge *record.Deployment, kargs ...string) (*record.Deployment, error) {
	t.Helper()
	s, err := store.Open(r.Store())
	if err != nil {
		t.Fatal(err)
	}
	return deploy.Build(context.Background(), deploy.Options{
		Root: r, Store: s, Stateroot: sr, Image: image, Merge: merge, Kargs: kargs,
		Now: func() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) },
	})
}

func mustBuild(t *testing.T, r layout.Root, image string, merge *record.Deployment, kargs ...string) *record.Deployment {
	t.Helper()
	d, err := build(t, r, image, merge, kargs...)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// names lists a directory, failing the test on error other than absence.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestFirstDeployment(t *testing.T) {
	r := newRoot(t)
	im := dt.Fetch(t, r, "1", dt.OS("kernel-1", "initrd-1", "quiet", "console=ttyS0,115200"))
	d := mustBuild(t, r, im.ManifestDigest, nil, "root=UUID=42", "rw")

	prefix := strings.TrimPrefix(im.ManifestDigest, "sha256:")[:12]
	if d.ID != prefix+".0" {
		t.Errorf("id = %q, want %s.0", d.ID, prefix)
	}
	if want := "root=UUID=42 rw quiet console=ttyS0,115200"; d.Kargs != want {
		t.Errorf("kargs = %q, want %q", d.Kargs, want)
	}
	if d.Kernel != "6.12.0" {
		t.Errorf("kernel = %q", d.Kernel)
	}
	if want := dt.Sha256("kernel-1", "initrd-1"); d.BootDigest != want {
		t.Errorf("boot digest = %s, want %s", d.BootDigest, want)
	}
	root := r.Deployment(sr, d.ID)
	if got := read(t, filepath.Join(root, "usr/etc/hostname")); got != "image\n" {
		t.Errorf("usr/etc/hostname = %q", got)
	}
	if n := names(t, filepath.Join(root, "etc")); len(n) != 0 {
		t.Errorf("etc is the mount point of the writable /etc and must be empty, has %v", n)
	}
	for _, mp := range []string{"etc", "var", "sysroot", "run", "proc", "sys", "dev", "tmp", "boot"} {
		fi, err := os.Lstat(filepath.Join(root, mp))
		if err != nil || !fi.IsDir() {
			t.Errorf("mount point /%s missing or not a directory: %v", mp, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(root, "tmp")); fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("/tmp mode = %v, want sticky 0777", fi.Mode())
	}
	boot := r.BootFiles(d.BootDigest)
	if read(t, filepath.Join(boot, "vmlinuz")) != "kernel-1" || read(t, filepath.Join(boot, "initramfs.img")) != "initrd-1" {
		t.Error("boot files do not hold the image's kernel and initramfs")
	}
	got, err := record.ReadDeployment(r, sr, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Image.ManifestDigest != im.ManifestDigest || got.BootDigest != d.BootDigest || got.Kargs != d.Kargs {
		t.Errorf("record = %+v", got)
	}
	if n := names(t, r.Deploy(sr)); len(n) != 2 {
		t.Errorf("deploy dir holds %v, want the tree and its record only", n)
	}
}

func TestSerialsAndSharedBootFiles(t *testing.T) {
	r := newRoot(t)
	v1 := dt.Fetch(t, r, "1", dt.OS("kernel", "initrd"))
	v2 := dt.Fetch(t, r, "2", dt.OS("kernel", "initrd"), []dt.File{dt.F("usr/bin/y", "y")})
	a := mustBuild(t, r, v1.ManifestDigest, nil)
	b := mustBuild(t, r, v1.ManifestDigest, nil)
	c := mustBuild(t, r, v2.ManifestDigest, nil)
	if !strings.HasSuffix(a.ID, ".0") || !strings.HasSuffix(b.ID, ".1") || !strings.HasSuffix(c.ID, ".0") {
		t.Errorf("ids %s %s %s: want serials 0, 1 for one image and 0 for the other", a.ID, b.ID, c.ID)
	}
	if a.BootDigest != c.BootDigest {
		t.Fatalf("identical kernels got different boot digests %s %s", a.BootDigest, c.BootDigest)
	}
	if n := names(t, filepath.Dir(r.BootFiles(a.BootDigest))); len(n) != 1 {
		t.Errorf("/boot/bootc holds %v, want one shared directory", n)
	}
	// Hardlinks into the store: the binary of both deployments is one inode.
	fa, _ := os.Stat(filepath.Join(r.Deployment(sr, a.ID), "usr/bin/x"))
	fc, _ := os.Stat(filepath.Join(r.Deployment(sr, c.ID), "usr/bin/x"))
	if !os.SameFile(fa, fc) {
		t.Error("identical files of two deployments are not one inode")
	}
}

// booted builds v1 and makes it the booted deployment with its writable /etc.
func booted(t *testing.T, r layout.Root, files []dt.File) *record.Deployment {
	t.Helper()
	im := dt.Fetch(t, r, "1", files)
	d := mustBuild(t, r, im.ManifestDigest, nil, "root=UUID=42")
	dt.Boot(t, r, d.ID, d.ID)
	return d
}

func TestKargsReconciled(t *testing.T) {
	r := newRoot(t)
	v1 := booted(t, r, dt.OS("k1", "i1", "quiet", "old=1"))
	if v1.Kargs != "root=UUID=42 quiet old=1" {
		t.Fatalf("v1 kargs = %q", v1.Kargs)
	}
	v1.Kargs = "root=UUID=42 quiet old=1 local=yes"
	im2 := dt.Fetch(t, r, "2", dt.OS("k2", "i2", "quiet", "new=2"))
	d := mustBuild(t, r, im2.ManifestDigest, v1, "extra=3", "local=yes")
	if want := "root=UUID=42 quiet local=yes new=2 extra=3"; d.Kargs != want {
		t.Errorf("kargs = %q, want %q", d.Kargs, want)
	}
}

func TestKargsRefusesDeploymentArg(t *testing.T) {
	r := newRoot(t)
	im := dt.Fetch(t, r, "1", dt.OS("k", "i"))
	_, err := build(t, r, im.ManifestDigest, nil, "bootc.deployment=default/x")
	if err == nil || !strings.Contains(err.Error(), "set by bootc itself") {
		t.Fatalf("err = %v", err)
	}
	assertClean(t, r)
}

// assertClean checks that a failed build left no tree, record, temporary tree or boot files.
func assertClean(t *testing.T, r layout.Root, keep ...string) {
	t.Helper()
	allowed := map[string]bool{}
	for _, k := range keep {
		allowed[k] = true
	}
	for _, n := range names(t, r.Deploy(sr)) {
		if !allowed[strings.TrimSuffix(n, ".json")] {
			t.Errorf("left behind in deploy/: %s", n)
		}
	}
	bootDirs := map[string]bool{}
	for _, k := range keep {
		if d, err := record.ReadDeployment(r, sr, k); err == nil {
			bootDirs[filepath.Base(r.BootFiles(d.BootDigest))] = true
		}
	}
	for _, n := range names(t, filepath.Dir(r.BootFiles("sha256:0"))) {
		if !bootDirs[n] {
			t.Errorf("left behind in /boot/bootc: %s", n)
		}
	}
}

func TestEtcConflictRefused(t *testing.T) {
	r := newRoot(t)
	files := append(dt.OS("k1", "i1"), dt.F("etc/app.conf", "default\n"))
	v1 := booted(t, r, files)
	// A local edit of a file the new image turns into a directory cannot be merged.
	if err := os.WriteFile(filepath.Join(r.Etc(sr, v1.ID), "app.conf"), []byte("local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	im2 := dt.Fetch(t, r, "2", append(dt.OS("k2", "i2"), dt.D("etc/app.conf"), dt.F("etc/app.conf/main", "x")))
	_, err := build(t, r, im2.ManifestDigest, v1)
	if !errors.Is(err, etcmerge.ErrConflict) || !strings.Contains(err.Error(), "app.conf") {
		t.Fatalf("err = %v, want a conflict naming app.conf", err)
	}
	assertClean(t, r, v1.ID)
}

func TestEtcMergeableAccepted(t *testing.T) {
	r := newRoot(t)
	v1 := booted(t, r, append(dt.OS("k1", "i1"), dt.F("etc/app.conf", "default\n")))
	if err := os.WriteFile(filepath.Join(r.Etc(sr, v1.ID), "app.conf"), []byte("local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	im2 := dt.Fetch(t, r, "2", append(dt.OS("k2", "i2"), dt.F("etc/app.conf", "new default\n")))
	if _, err := build(t, r, im2.ManifestDigest, v1); err != nil {
		t.Fatal(err)
	}
}

func TestBadImages(t *testing.T) {
	kernelFiles := func(v string) []dt.File {
		return []dt.File{dt.D("usr/lib/modules/" + v), dt.F("usr/lib/modules/"+v+"/vmlinuz", "k"+v), dt.F("usr/lib/modules/"+v+"/initramfs.img", "i"+v)}
	}
	base := []dt.File{dt.D("usr"), dt.D("usr/lib"), dt.D("usr/lib/modules"), dt.F("usr/bin/x", "x")}
	cases := []struct {
		name  string
		files []dt.File
		want  error
		text  string
	}{
		{"no modules", []dt.File{dt.F("usr/bin/x", "x")}, deploy.ErrNoKernel, "usr/lib/modules does not exist"},
		{"no kernel", append(base, dt.D("usr/lib/modules/6.1"), dt.F("usr/lib/modules/6.1/modules.dep", "")), deploy.ErrNoKernel, "no /usr/lib/modules/<version>/vmlinuz"},
		{"two kernels", append(append(base, kernelFiles("6.1")...), kernelFiles("6.2")...), deploy.ErrManyKernels, "6.1, 6.2"},
		{"no initramfs", append(base, dt.D("usr/lib/modules/6.1"), dt.F("usr/lib/modules/6.1/vmlinuz", "k")), deploy.ErrNoKernel, "initramfs.img"},
		{"kernel is a symlink", append(base, dt.D("usr/lib/modules/6.1"), dt.File{Path: "usr/lib/modules/6.1/vmlinuz", Link: "/etc/shadow"}, dt.F("usr/lib/modules/6.1/initramfs.img", "i")), deploy.ErrNoKernel, "vmlinuz"},
		{"etc twice", append(append(base, kernelFiles("6.1")...), dt.F("etc/a", "1"), dt.F("usr/etc/a", "2")), deploy.ErrBadImageTree, "both /etc and /usr/etc"},
		{"no usr", []dt.File{dt.F("etc/a", "1")}, deploy.ErrBadImageTree, "/usr is missing"},
		{"var symlink", append(append(base, kernelFiles("6.1")...), dt.File{Path: "var", Link: "/tmp"}), deploy.ErrBadImageTree, "/var is a symlink"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRoot(t)
			im := dt.Fetch(t, r, "1", c.files)
			_, err := build(t, r, im.ManifestDigest, nil)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("err = %v, want %v mentioning %q", err, c.want, c.text)
			}
			assertClean(t, r)
		})
	}
}

func TestImageNotReady(t *testing.T) {
	r := newRoot(t)
	if _, err := build(t, r, dt.Sha256("nothing"), nil); !errors.Is(err, deploy.ErrNotFetched) {
		t.Errorf("unfetched image: err = %v", err)
	}
	im := dt.Fetch(t, r, "1", dt.OS("k", "i"))
	s, _ := store.Open(r.Store())
	lay, _ := s.Layers()
	if err := s.Remove(lay[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := build(t, r, im.ManifestDigest, nil); !errors.Is(err, store.ErrLayerNotFound) {
		t.Errorf("missing layer: err = %v", err)
	}
	assertClean(t, r)
}

func TestRecoversFromInterruptedBuild(t *testing.T) {
	r := newRoot(t)
	im := dt.Fetch(t, r, "1", dt.OS("kernel", "initrd"))
	prefix := strings.TrimPrefix(im.ManifestDigest, "sha256:")[:12]
	// An interrupted compose, an interrupted boot file copy, and a boot directory damaged by a
	// power cut before its data reached the disk.
	tmpTree := filepath.Join(r.Deploy(sr), "."+prefix+".0.tmp")
	if err := os.MkdirAll(filepath.Join(tmpTree, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	bootDigest := dt.Sha256("kernel", "initrd")
	bootDir := r.BootFiles(bootDigest)
	tmpBoot := filepath.Join(filepath.Dir(bootDir), "."+filepath.Base(bootDir)+".tmp")
	for _, dir := range []string{tmpBoot, bootDir} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "vmlinuz"), []byte("ker"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d := mustBuild(t, r, im.ManifestDigest, nil)
	if d.ID != prefix+".0" {
		t.Errorf("id = %s, want the serial of the interrupted build reused", d.ID)
	}
	if read(t, filepath.Join(bootDir, "vmlinuz")) != "kernel" || read(t, filepath.Join(bootDir, "initramfs.img")) != "initrd" {
		t.Error("damaged boot directory was not repaired")
	}
	for _, p := range []string{tmpTree, tmpBoot} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists: %v", p, err)
		}
	}
	assertClean(t, r, d.ID)
}

func TestNextIDSkipsOrphans(t *testing.T) {
	r := newRoot(t)
	dg := dt.Sha256("x")
	prefix := strings.TrimPrefix(dg, "sha256:")[:12]
	// A tree left without record and a state directory both hold their serials.
	os.MkdirAll(r.Deployment(sr, prefix+".3"), 0o755)
	os.MkdirAll(filepath.Join(r.State(sr), prefix+".7", "etc"), 0o755)
	os.MkdirAll(filepath.Join(r.State(sr), "var"), 0o755)
	id, err := deploy.NextID(r, sr, dg)
	if err != nil {
		t.Fatal(err)
	}
	if id != prefix+".8" {
		t.Errorf("id = %s, want %s.8", id, prefix)
	}
	if !deploy.IsID(id) || deploy.IsID("var") || deploy.IsID(prefix+".x") {
		t.Error("IsID misjudges")
	}
	if _, err := deploy.NextID(r, sr, "md5:abc"); err == nil {
		t.Error("non-sha256 digest accepted")
	}
}

func TestRebootRequired(t *testing.T) {
	p := filepath.Join(t.TempDir(), "run", "reboot-required")
	if err := deploy.WriteRebootRequired(p, "sha256:aa"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, p); got != "bootc: Reboot required for image: sha256:aa\n" {
		t.Errorf("content = %q", got)
	}
	if err := deploy.ClearRebootRequired(p, "sha256:bb"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Error("cleared a file naming another image")
	}
	if err := deploy.ClearRebootRequired(p, "sha256:aa"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Error("file naming the image not cleared")
	}
}
