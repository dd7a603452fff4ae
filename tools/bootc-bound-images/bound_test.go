package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/boundimage"
	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/sysroottest"
)

// appImage is a runnable image: a static busybox and /app holding content.
func appImage(t *testing.T, content string) fetchtest.Image {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		envtest.Missing(t, "busybox-static is not installed (scripts/deps.sh installs it): %v", err)
	}
	return fetchtest.Image{Layers: []fetchtest.Layer{
		{Files: []fetchtest.File{{Path: "bin", Mode: fs.ModeDir | 0o755}, {Path: "bin/busybox", Mode: 0o755, Data: bb}}},
		{Files: []fetchtest.File{{Path: "app", Data: []byte(content)}}},
	}}
}

// declare gives a root a quadlet file per image and the bound-images.d link to it; the name's
// extension picks the kind.
func declare(t *testing.T, root string, images map[string]string) {
	t.Helper()
	files := map[string]string{boundimage.Dir + "/": ""}
	for name, ref := range images {
		section := "Image"
		if strings.HasSuffix(name, ".container") {
			section = "Container"
		}
		files["usr/share/containers/systemd/"+name] = "[Unit]\nDescription=" + name + "\n\n[" + section + "]\nImage=" + ref + "\n"
	}
	sysroottest.Files(t, root, files)
	for name := range images {
		if err := os.Symlink("/usr/share/containers/systemd/"+name, filepath.Join(root, boundimage.Dir, name)); err != nil {
			t.Fatal(err)
		}
	}
}

type env struct {
	t     *testing.T
	s     *sysroottest.Sysroot
	conf  string
	proxy *fetchtest.Proxy
	reg   *fetchtest.Registry
}

func newEnv(t *testing.T) *env {
	fetchtest.RequireRoot(t)
	fetchtest.Require(t, "podman", "skopeo")
	reg := fetchtest.StartRegistry(t)
	proxy := fetchtest.StartProxy(t, reg.Host)
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := fetchtest.WriteRegistriesConf(conf, reg.Host, proxy.Host); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, s: sysroottest.New(t), conf: conf, proxy: proxy, reg: reg}
}

// push builds an app image and puts it on the registry; it returns its reference through the
// counting proxy.
func (e *env) push(name, content string) string {
	e.t.Helper()
	dir := filepath.Join(e.t.TempDir(), "oci")
	if _, err := fetchtest.WriteLayout(dir, "1", appImage(e.t, content)); err != nil {
		e.t.Fatal(err)
	}
	e.reg.Push("oci:"+dir+":1", name+":1")
	return e.proxy.Ref(name + ":1")
}

// deployment writes a deployment record and a root declaring images.
func (e *env) deployment(id string, images map[string]string) {
	e.t.Helper()
	e.s.Deploy(id, id)
	root := e.s.Root.Deployment("default", id)
	if err := os.MkdirAll(root, 0o755); err != nil {
		e.t.Fatal(err)
	}
	declare(e.t, root, images)
}

func (e *env) cli() *CLI {
	return &CLI{
		Root:   cli.Root{Sysroot: e.s.Root.Phys, RunDir: e.s.Root.Run},
		Podman: "podman", Cmdline: "/nonexistent", AuthSearch: []string{},
	}
}

func (e *env) run(c *CLI, cmd string) string {
	e.t.Helper()
	var out, errOut bytes.Buffer
	start := time.Now()
	if err := c.Run(context.Background(), cmd, &out, &errOut); err != nil {
		e.t.Fatalf("%s: %v\n%s%s", cmd, err, out.String(), errOut.String())
	}
	e.t.Logf("%s took %v:\n%s", cmd, time.Since(start).Round(time.Millisecond), out.String())
	return out.String()
}

func (e *env) sync(id string) string {
	c := e.cli()
	c.Sync = SyncCmd{Deployment: "default/" + id, RegistriesConf: e.conf}
	return e.run(c, "sync")
}

// consumer runs podman as a consumer of bound images does: its own storage, bootc's as an
// additional image store, reached through the /usr/lib/bootc/storage link that install makes.
func (e *env) consumer(args ...string) (string, error) {
	e.t.Helper()
	fake := e.t.TempDir()
	if err := os.Symlink(e.s.Root.Phys, filepath.Join(fake, "sysroot")); err != nil {
		e.t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(fake, "usr/lib/bootc"), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Symlink("../../../sysroot/bootc/storage", filepath.Join(fake, "usr/lib/bootc/storage")); err != nil {
		e.t.Fatal(err)
	}
	own := e.t.TempDir()
	full := append([]string{"--root", filepath.Join(own, "root"), "--runroot", filepath.Join(own, "run"),
		"--storage-opt=additionalimagestore=" + filepath.Join(fake, "usr/lib/bootc/storage")}, args...)
	out, err := exec.Command("podman", full...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func (e *env) stored() []string {
	e.t.Helper()
	out, err := e.consumer("images", "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		e.t.Fatalf("podman images: %v: %s", err, out)
	}
	names := strings.Fields(out)
	slices.Sort(names)
	return names
}

func TestSyncGCList(t *testing.T) {
	e := newEnv(t)
	a := e.push("app-a", "image a")
	b := e.push("app-b", "image b")
	old := e.push("app-old", "rollback's image")
	gone := e.push("app-gone", "nobody's image")

	e.deployment("r0", map[string]string{"old.image": old})
	e.deployment("b1", map[string]string{"a.image": a, "b.container": b})
	e.s.Entries("b1", "r0")
	e.s.Boot("b1")

	out := e.sync("b1")
	if !strings.Contains(out, "Bound images stored: 2 (of 2 declared)") {
		t.Errorf("first sync did not store both images:\n%s", out)
	}
	for ref, want := range map[string]string{a: "image a", b: "image b"} {
		got, err := e.consumer("run", "--rm", "--network", "none", ref, "/bin/busybox", "cat", "/app")
		if err != nil || got != want {
			t.Errorf("running %s from bootc's storage: %v: %q, want %q", ref, err, got, want)
		}
	}

	before := len(e.proxy.Requests())
	out = e.sync("b1")
	if !strings.Contains(out, "Bound images stored: 0 (of 2 declared)") {
		t.Errorf("second sync stored something:\n%s", out)
	}
	if n := len(e.proxy.Requests()) - before; n != 0 {
		t.Errorf("second sync made %d registry requests: %v", n, e.proxy.Requests()[before:])
	}

	// The rollback's image, and one that only an unrelated root declares.
	e.sync("r0")
	other := t.TempDir()
	declare(t, other, map[string]string{"gone.image": gone})
	c := e.cli()
	c.Sync = SyncCmd{Root: other, RegistriesConf: e.conf}
	e.run(c, "sync")
	all := []string{a, b, gone, old}
	slices.Sort(all)
	if got := e.stored(); !reflect.DeepEqual(got, all) {
		t.Fatalf("stored before gc: %v, want %v", got, all)
	}

	c = e.cli()
	c.GC.DryRun = true
	if out := e.run(c, "gc"); !strings.Contains(out, "Would remove bound image") || !strings.Contains(out, gone) {
		t.Errorf("gc --dry-run:\n%s", out)
	}
	if got := e.stored(); !reflect.DeepEqual(got, all) {
		t.Fatalf("gc --dry-run removed something: %v", got)
	}
	out = e.run(e.cli(), "gc")
	if !strings.Contains(out, "3 kept, 1 removed") {
		t.Errorf("gc:\n%s", out)
	}
	kept := []string{a, b, old}
	slices.Sort(kept)
	if got := e.stored(); !reflect.DeepEqual(got, kept) {
		t.Errorf("stored after gc: %v, want %v (the rollback's kept, the undeclared removed)", got, kept)
	}

	// list: the host images under the names their deployments track (b1's was installed from
	// container storage), an update no deployment uses yet under its source, and the booted
	// deployment's declarations.
	fetched := map[string]host.ImageReference{
		sysroottest.Digest('b'): {Image: "[overlay@/var/lib/containers/storage]0123abcd", Transport: "containers-storage"},
		sysroottest.Digest('c'): {Image: "/media/stick/os.oci:v9", Transport: "oci"},
	}
	for dg, ref := range fetched {
		if err := os.MkdirAll(e.s.Root.Image(dg), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := record.Write(e.s.Root.ImageRecord(dg), &record.FetchedImage{Version: record.FormatVersion,
			Image: record.Image{Ref: ref, ManifestDigest: dg}}); err != nil {
			t.Fatal(err)
		}
	}
	c = e.cli()
	c.List = ListCmd{Type: "all", Format: "json"}
	var rows []Row
	if err := json.Unmarshal([]byte(e.run(c, "list")), &rows); err != nil {
		t.Fatal(err)
	}
	want := []Row{{Type: "host", Image: sysroottest.Image}, {Type: "host", Image: "oci:/media/stick/os.oci:v9"},
		{Type: "logical", Image: a}, {Type: "logical", Image: b}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("list --format json: %+v, want %+v", rows, want)
	}
}

func TestFromStorage(t *testing.T) {
	e := newEnv(t)
	ref := e.push("app-local", "local copy")
	// The host's own storage, as podman left it after a pull.
	src := t.TempDir()
	pull := exec.Command("podman", "--root", filepath.Join(src, "storage"), "--runroot", filepath.Join(src, "run"),
		"pull", "--quiet", "--tls-verify=false", ref)
	if out, err := pull.CombinedOutput(); err != nil {
		t.Fatalf("podman pull: %v: %s", err, out)
	}
	e.deployment("d1", map[string]string{"local.image": ref})
	// The registry is gone: the image can only come from the other storage.
	e.reg.Stop()
	c := e.cli()
	c.Sync = SyncCmd{Deployment: "default/d1", FromStorage: src, RegistriesConf: e.conf}
	out := e.run(c, "sync")
	if !strings.Contains(out, "copied from "+filepath.Join(src, "storage")) {
		t.Errorf("sync --from-storage:\n%s", out)
	}
	got, err := e.consumer("run", "--rm", "--network", "none", ref, "/bin/busybox", "cat", "/app")
	if err != nil || got != "local copy" {
		t.Errorf("running the copied image: %v: %q", err, got)
	}
}

func TestUsage(t *testing.T) {
	s := sysroottest.New(t)
	root := t.TempDir()
	declare(t, root, map[string]string{"bad.image": "reg.example/%i:1"})
	for name, tc := range map[string]struct {
		sync SyncCmd
		msg  string
	}{
		"neither":           {SyncCmd{}, "name the deployment with --deployment"},
		"both":              {SyncCmd{Deployment: "default/x", Root: root}, "exclude each other"},
		"bad deployment":    {SyncCmd{Deployment: "default"}, "want STATEROOT/ID"},
		"escaping id":       {SyncCmd{Deployment: "default/.."}, "invalid name"},
		"missing":           {SyncCmd{Deployment: "default/nope"}, "deployment default/nope does not exist"},
		"bad declaration":   {SyncCmd{Root: root}, `systemd specifier "%i"`},
		"digest from store": {SyncCmd{Root: digestRoot(t), FromStorage: "/var/lib/containers"}, "pinned by digest"},
	} {
		t.Run(name, func(t *testing.T) {
			c := &CLI{Root: cli.Root{Sysroot: s.Root.Phys, RunDir: s.Root.Run}, Podman: "/nonexistent/podman"}
			c.Sync = tc.sync
			err := c.Run(context.Background(), "sync", &bytes.Buffer{}, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tc.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %v, want one line containing %q", err, tc.msg)
			}
		})
	}
	// Nothing declared: nothing to start.
	c := &CLI{Root: cli.Root{Sysroot: s.Root.Phys, RunDir: s.Root.Run}, Podman: "/nonexistent/podman"}
	c.Sync = SyncCmd{Root: t.TempDir()}
	var out bytes.Buffer
	if err := c.Run(context.Background(), "sync", &out, &out); err != nil || !strings.Contains(out.String(), "No bound images declared") {
		t.Errorf("sync of a root without declarations: %v\n%s", err, out.String())
	}
}

func digestRoot(t *testing.T) string {
	root := t.TempDir()
	declare(t, root, map[string]string{"d.image": "reg.example/app@sha256:" + strings.Repeat("a", 64)})
	return root
}
