// Package sysroottest builds physical roots for tests: deployment records, boot entries and the
// staged and booted records, laid out as stage and finalize leave them.
package sysroottest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// Image is the reference every test deployment comes from.
const Image = "127.0.0.1:5000/os:latest"

// Sysroot is a physical root under a test's temporary directory.
type Sysroot struct {
	T    testing.TB
	Root layout.Root
	n    int
}

// New makes an initialised physical root with the "default" stateroot.
func New(t testing.TB) *Sysroot {
	dir := t.TempDir()
	r := layout.New(filepath.Join(dir, "phys"), filepath.Join(dir, "run"))
	if err := r.Init(layout.DefaultStateroot); err != nil {
		t.Fatal(err)
	}
	return &Sysroot{T: t, Root: r}
}

// Digest is a fake sha256 digest made of one repeated character.
func Digest(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

// Deploy writes a deployment record for image version v; the id's first character picks the
// manifest digest. Each deployment is a day newer than the previous one.
func (s *Sysroot) Deploy(id, v string, mods ...func(*record.Deployment)) *record.Deployment {
	s.T.Helper()
	s.n++
	ts := time.Date(2026, 1, s.n, 12, 0, 0, 0, time.UTC)
	d := &record.Deployment{
		Stateroot: layout.DefaultStateroot, ID: id,
		Image: record.Image{
			Ref:            host.ImageReference{Image: Image, Transport: host.TransportRegistry},
			ManifestDigest: Digest(id[0]), Architecture: "amd64", Version: v, Created: &ts,
		},
		Kernel: "6.12.0", BootDigest: Digest('b'), Kargs: "root=UUID=1 rw console=ttyS0", Created: ts,
	}
	for _, m := range mods {
		m(d)
	}
	if err := record.WriteDeployment(s.Root, d); err != nil {
		s.T.Fatal(err)
	}
	return d
}

// Entries replaces the boot entries with one per deployment id, the first being the default.
func (s *Sysroot) Entries(ids ...string) {
	s.T.Helper()
	dir := s.Root.Entries()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.T.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	for _, f := range old {
		os.Remove(f)
	}
	for i, id := range ids {
		n := len(ids) - i // higher versions sort first
		body := fmt.Sprintf("title OS %s\nversion %d\nlinux /bootc/x/vmlinuz\ninitrd /bootc/x/initramfs.img\noptions root=UUID=1 %s=%s\n",
			id, n, layout.DeploymentKarg, layout.DeploymentKargValue(layout.DefaultStateroot, id))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("bootc-default-%d.conf", n)), []byte(body), 0o644); err != nil {
			s.T.Fatal(err)
		}
	}
}

// Boot writes the initramfs's booted marker.
func (s *Sysroot) Boot(id string) {
	s.T.Helper()
	if err := record.Write(s.Root.Booted(), &record.Booted{Version: record.FormatVersion, Stateroot: layout.DefaultStateroot, ID: id}); err != nil {
		s.T.Fatal(err)
	}
}

// Stage writes the staged record.
func (s *Sysroot) Stage(id string, downloadOnly bool) {
	s.T.Helper()
	if err := record.Write(s.Root.Staged(), &record.Staged{Version: record.FormatVersion, Stateroot: layout.DefaultStateroot, ID: id, DownloadOnly: downloadOnly}); err != nil {
		s.T.Fatal(err)
	}
}

// MainWithTools is a whole TestMain: it finds or builds the named tools (as Tools does), points
// *bin at their directory (readable by unprivileged test users too), runs the tests and exits.
func MainWithTools(m *testing.M, bin *string, names ...string) {
	dir, err := os.MkdirTemp("", "bootc-test-bin-")
	if err == nil {
		os.Chmod(dir, 0o755)
		*bin, err = Tools(dir, names...)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Tools returns a directory holding the named tool binaries: $BOOTC_TEST_BIN when it has them
// all (make test builds them first), otherwise a fresh build into dir.
func Tools(dir string, names ...string) (string, error) {
	if bin := os.Getenv("BOOTC_TEST_BIN"); bin != "" {
		missing := false
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(bin, n)); err != nil {
				missing = true
			}
		}
		if !missing {
			return bin, nil
		}
	}
	tags, err := buildTags()
	if err != nil {
		return "", err
	}
	args := []string{"build", "-tags", tags, "-o", dir + "/"}
	for _, n := range names {
		args = append(args, "gobootc.dev/tools/"+n)
	}
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %v: %v\n%s", names, err, out)
	}
	return dir, nil
}

// Files writes files (path → content; a trailing "/" makes a directory) under dir.
func Files(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Tree gives a deployment a root with the image's /etc (usr/etc), its writable /etc, and its
// kernel and initramfs in /boot, so finalize and rollback can work on it.
func (s *Sysroot) Tree(d *record.Deployment, imageEtc, liveEtc map[string]string) {
	s.T.Helper()
	root := s.Root.Deployment(d.Stateroot, d.ID)
	Files(s.T, root, map[string]string{"usr/bin/true": "#!/bin/true\n", "usr/etc/": "", "etc/": "", "var/": "", "sysroot/": ""})
	Files(s.T, filepath.Join(root, "usr/etc"), imageEtc)
	if liveEtc != nil {
		etc := s.Root.Etc(d.Stateroot, d.ID)
		Files(s.T, etc, map[string]string{"./": ""})
		Files(s.T, etc, liveEtc)
	}
	Files(s.T, s.Root.BootFiles(d.BootDigest), map[string]string{"vmlinuz": "kernel " + d.Kernel, "initramfs.img": "initramfs"})
}

// Host is a booted v1 with v0 for rollback and v2 staged, as stage leaves a host before its
// shutdown. Each has a deployment tree; v1's live /etc has local changes.
type Host struct {
	*Sysroot
	V0, V1, V2 *record.Deployment
}

// ImageEtc is the /etc of the v0 and v1 images.
var ImageEtc = map[string]string{"hostname": "image\n", "motd": "v1 motd\n", "removed-locally": "x\n"}

// NewHost builds a Host; v2Etc is v2's image /etc (nil: v1's with a new motd and a new file).
func NewHost(t testing.TB, v2Etc map[string]string) *Host {
	s := New(t)
	h := &Host{Sysroot: s}
	h.V0 = s.Deploy("aaaa.0", "0")
	h.V1 = s.Deploy("bbbb.0", "1")
	h.V2 = s.Deploy("cccc.0", "2", func(d *record.Deployment) { d.BootDigest = Digest('e'); d.Kargs += " new.karg" })
	s.Tree(h.V0, ImageEtc, ImageEtc)
	s.Tree(h.V1, ImageEtc, map[string]string{"hostname": "edited-locally\n", "motd": "v1 motd\n", "added-locally": "mine\n"})
	if v2Etc == nil {
		v2Etc = map[string]string{"hostname": "image\n", "motd": "v2 motd\n", "removed-locally": "x\n", "new-default": "v2\n"}
	}
	s.Tree(h.V2, v2Etc, nil)
	s.Boot(h.V1.ID)
	if err := bootloader.WriteSet(s.Root.Boot, []bootloader.Deployment{bootloader.FromRecord(h.V1), bootloader.FromRecord(h.V0)}, bootloader.Options{NoFreeze: true}); err != nil {
		t.Fatal(err)
	}
	s.Stage(h.V2.ID, false)
	return h
}

// BootOrder is the ids of the boot entries, default first, joined by commas.
func (s *Sysroot) BootOrder() string {
	s.T.Helper()
	set, err := bootloader.ReadSet(s.Root.Boot)
	if err != nil {
		s.T.Fatal(err)
	}
	var ids []string
	for _, d := range set {
		ids = append(ids, d.ID)
	}
	return strings.Join(ids, ",")
}

// buildTags reads the build tags the tools need (containers/image's) from the workspace, the same
// list the Makefile uses.
func buildTags() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	work := strings.TrimSpace(string(out))
	if err != nil || work == "" || work == "off" {
		return "", fmt.Errorf("finding the workspace (go env GOWORK): %v", err)
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(work), "tools/bootc-fetch/TAGS"))
	if err != nil {
		return "", fmt.Errorf("reading build tags: %w", err)
	}
	return strings.Join(strings.Fields(string(data)), ","), nil
}
