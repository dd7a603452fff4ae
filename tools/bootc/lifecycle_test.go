package main

import (
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/spectest"
	"gobootc.dev/lib/status"
)

// osImage is a small bootable image: an /etc with defaults, a versioned file in /usr and a kargs.d.
func osImage(version string, etc map[string]string, kargs string) fetchtest.Image {
	files := []fetchtest.File{
		{Path: "usr/share", Mode: fs.ModeDir | 0o755},
		{Path: "usr/share/os-version", Data: []byte(version + "\n")},
		{Path: "usr/lib/bootc", Mode: fs.ModeDir | 0o755},
		{Path: "usr/lib/bootc/kargs.d", Mode: fs.ModeDir | 0o755},
		{Path: "usr/lib/bootc/kargs.d/10-test.toml", Data: []byte("kargs = [" + kargs + "]\n")},
	}
	for name, content := range etc {
		files = append(files, fetchtest.File{Path: "etc/" + name, Data: []byte(content)})
	}
	return fetchtest.Bootable(version, files...)
}

// lifecycle is a physical root and the commands of one host's life.
type lifecycle struct {
	t   *testing.T
	r   layout.Root
	env []string
	// calls is where the fake systemctl of newLifecycle logs its arguments.
	calls string
}

// newLifecycle is a host to be: a physical root in a temporary directory, the environment every
// front test passes (a fake systemctl in $PATH whose calls go to l.calls, so that --apply's
// reboot is seen rather than done) plus extra, and oci, a directory for OCI layouts.
func newLifecycle(t *testing.T, extra ...string) (l *lifecycle, oci string) {
	dir := t.TempDir()
	r := layout.New(filepath.Join(dir, "phys"), filepath.Join(dir, "run"))
	pathEnv, calls := fakeSystemctl(t)
	env := []string{"BOOTC_SKIP_CONTAINER_CHECK=1", "BOOTC_SYSROOT=" + r.Phys, "BOOTC_RUN_DIR=" + r.Run,
		"BOOTC_REBOOT_REQUIRED=" + filepath.Join(dir, "reboot-required"), "BOOTC_CMDLINE=/dev/null", pathEnv}
	return &lifecycle{t: t, r: r, env: append(env, extra...), calls: calls}, filepath.Join(dir, "oci")
}

// layouts writes an OCI layout image of each version under its tag in oci.
func (l *lifecycle) layouts(oci string, tags map[string]string) {
	l.t.Helper()
	for tag, v := range tags {
		if _, err := fetchtest.WriteLayout(oci, tag, osImage(v, nil, `"console=ttyS0"`)); err != nil {
			l.t.Fatal(err)
		}
	}
}

func (l *lifecycle) bootc(args ...string) result {
	l.t.Helper()
	res := bootc(l.t, 0, l.env, args...)
	if res.code != 0 {
		l.t.Fatalf("bootc %v: exit %d\n%s%s", args, res.code, res.stdout, res.stderr)
	}
	return res
}

func (l *lifecycle) tool(name string, args ...string) string {
	l.t.Helper()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Env = append(os.Environ(), l.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func (l *lifecycle) status() *host.Host {
	l.t.Helper()
	res := l.bootc("status", "--format=json")
	if err := spectest.ValidateHost([]byte(res.stdout)); err != nil {
		l.t.Fatalf("status does not validate: %v\n%s", err, res.stdout)
	}
	h, err := host.Parse([]byte(res.stdout))
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

// reboot is what the boot loader and the initramfs do: boot the default entry.
func (l *lifecycle) reboot() string {
	l.t.Helper()
	set, err := bootloader.ReadSet(l.r.Boot)
	if err != nil || len(set) == 0 {
		l.t.Fatalf("no boot entries: %v", err)
	}
	os.RemoveAll(l.r.Run)
	os.MkdirAll(l.r.Run, 0o755)
	if err := record.Write(l.r.Booted(), &record.Booted{Version: 1, Stateroot: set[0].Stateroot, ID: set[0].ID}); err != nil {
		l.t.Fatal(err)
	}
	return set[0].ID
}

func version(e *host.BootEntry) string {
	if e == nil || e.Image == nil || e.Image.Version == nil {
		return "-"
	}
	return *e.Image.Version
}

func TestLifecycle(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	oci := filepath.Join(dir, "oci")
	r := layout.New(filepath.Join(dir, "phys"), filepath.Join(dir, "run"))
	l := &lifecycle{t: t, r: r, env: []string{"BOOTC_SKIP_CONTAINER_CHECK=1", "BOOTC_SYSROOT=" + r.Phys, "BOOTC_RUN_DIR=" + r.Run,
		"BOOTC_REBOOT_REQUIRED=" + filepath.Join(dir, "reboot-required"), "BOOTC_CMDLINE=/dev/null"}}
	etcV1 := map[string]string{"motd": "v1 motd\n", "app.conf": "setting=1\n"}
	if _, err := fetchtest.WriteLayout(oci, "latest", osImage("1", etcV1, `"console=ttyS0", "v1.only"`)); err != nil {
		t.Fatal(err)
	}

	// Install v1 the way install does it: fetch, build the deployment, its /etc from the image,
	// a single boot entry with an install-time argument; then boot it.
	if err := r.Init(layout.DefaultStateroot); err != nil {
		t.Fatal(err)
	}
	l.tool("bootc-fetch", "--transport", "oci", oci+":latest")
	var fetched []record.FetchedImage
	imgs, _ := filepath.Glob(filepath.Join(r.Images(), "*", "image.json"))
	for _, p := range imgs {
		var f record.FetchedImage
		b, _ := os.ReadFile(p)
		json.Unmarshal(b, &f)
		fetched = append(fetched, f)
	}
	if len(fetched) != 1 {
		t.Fatalf("fetched %d images", len(fetched))
	}
	l.tool("bootc-stage", "--image", fetched[0].Image.ManifestDigest, "--karg", "install.karg=1", "--no-arm")
	staged, err := record.ReadStaged(r)
	if err != nil {
		t.Fatal(err)
	}
	v1, err := record.ReadDeployment(r, staged.Stateroot, staged.ID)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(r.Etc(v1.Stateroot, v1.ID)), 0o755)
	if out, err := exec.Command("cp", "-a", filepath.Join(r.Deployment(v1.Stateroot, v1.ID), "usr/etc"), r.Etc(v1.Stateroot, v1.ID)).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := bootloader.WriteSet(r.Boot, []bootloader.Deployment{bootloader.FromRecord(v1)}, bootloader.Options{NoFreeze: true}); err != nil {
		t.Fatal(err)
	}
	record.Remove(r.Staged())
	l.reboot()
	h := l.status()
	if version(h.Status.Booted) != "1" || h.Status.Staged != nil || h.Status.Rollback != nil {
		t.Fatalf("after install: %+v", h.Status)
	}
	if h.Spec.Image == nil || h.Spec.Image.Transport != "oci" || h.Spec.Image.Image != oci+":latest" {
		t.Fatalf("tracked image %+v", h.Spec.Image)
	}

	// A local change to /etc, then nothing new to fetch.
	etc := r.Etc(v1.Stateroot, v1.ID)
	os.WriteFile(filepath.Join(etc, "app.conf"), []byte("setting=local\n"), 0o644)
	if res := l.bootc("upgrade"); !strings.Contains(res.stdout, "No update available.") {
		t.Errorf("upgrade with nothing new: %s", res.stdout)
	}

	// v2: a new /usr file, a new /etc default, a changed default, different kargs.
	etcV2 := map[string]string{"motd": "v2 motd\n", "app.conf": "setting=2\n", "new.conf": "fresh\n"}
	if _, err := fetchtest.WriteLayout(oci, "latest", osImage("2", etcV2, `"console=ttyS0", "v2.only"`)); err != nil {
		t.Fatal(err)
	}
	if res := l.bootc("upgrade", "--check"); !strings.Contains(res.stdout, "Update available") {
		t.Errorf("upgrade --check: %s", res.stdout)
	}
	if h := l.status(); h.Status.Booted.CachedUpdate == nil || version(&host.BootEntry{Image: h.Status.Booted.CachedUpdate}) != "2" {
		t.Errorf("cachedUpdate after --check: %+v", h.Status.Booted.CachedUpdate)
	}
	l.bootc("upgrade")
	h = l.status()
	if version(h.Status.Staged) != "2" || version(h.Status.Booted) != "1" {
		t.Fatalf("after upgrade: staged %s booted %s", version(h.Status.Staged), version(h.Status.Booted))
	}
	// Staging the same image again changes nothing.
	l.bootc("upgrade")

	// Shutdown: finalize; then the boot loader starts v2.
	l.tool("bootc-finalize")
	v2id := l.reboot()
	h = l.status()
	if version(h.Status.Booted) != "2" || version(h.Status.Rollback) != "1" || h.Status.Staged != nil {
		t.Fatalf("after reboot into v2: %+v", h.Status)
	}
	etc2 := r.Etc("default", v2id)
	for file, want := range map[string]string{"app.conf": "setting=local\n", "motd": "v2 motd\n", "new.conf": "fresh\n"} {
		if b, _ := os.ReadFile(filepath.Join(etc2, file)); string(b) != want {
			t.Errorf("v2 /etc/%s = %q, want %q", file, b, want)
		}
	}
	set, _ := bootloader.ReadSet(r.Boot)
	for _, want := range []string{"v2.only", "install.karg=1", "console=ttyS0"} {
		if !strings.Contains(set[0].Kargs, want) {
			t.Errorf("v2 kargs %q lack %s", set[0].Kargs, want)
		}
	}
	if strings.Contains(set[0].Kargs, "v1.only") {
		t.Errorf("v2 kargs %q keep v1's argument", set[0].Kargs)
	}
	if b, _ := os.ReadFile(filepath.Join(r.Deployment("default", v2id), "usr/share/os-version")); string(b) != "2\n" {
		t.Errorf("v2 /usr content %q", b)
	}

	// Roll back: v1 comes back with its own /etc.
	if res := l.bootc("rollback"); !strings.Contains(res.stdout, "Next boot: rollback deployment") {
		t.Errorf("rollback: %s", res.stdout)
	}
	if !l.status().Status.RollbackQueued {
		t.Error("rollback not queued")
	}
	if id := l.reboot(); id != v1.ID {
		t.Fatalf("rebooted into %s, want %s", id, v1.ID)
	}
	h = l.status()
	if version(h.Status.Booted) != "1" || version(h.Status.Rollback) != "2" {
		t.Errorf("after rollback reboot: booted %s rollback %s", version(h.Status.Booted), version(h.Status.Rollback))
	}
	if b, _ := os.ReadFile(filepath.Join(etc, "app.conf")); string(b) != "setting=local\n" {
		t.Errorf("v1 /etc/app.conf = %q", b)
	}

	// Switch to another image source: spec.image follows the staged deployment.
	other := filepath.Join(dir, "other")
	if _, err := fetchtest.WriteLayout(other, "stable", osImage("3", etcV1, `"console=ttyS0"`)); err != nil {
		t.Fatal(err)
	}
	res := l.bootc("switch", "--transport", "oci", other+":stable")
	t.Log(res.stdout)
	h = l.status()
	if version(h.Status.Staged) != "3" || h.Spec.Image.Image != other+":stable" {
		t.Errorf("after switch: staged %s spec %+v", version(h.Status.Staged), h.Spec.Image)
	}
	st, _ := status.Load(status.Options{Root: r})
	if st.Booted.ID != v1.ID {
		t.Errorf("switch changed the booted deployment")
	}
	oneLineError(t, bootc(t, 0, l.env, "switch", "--transport", "registry", "Not/A:Valid:Ref"), "invalid")
}
