package gc_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"gobootc.dev/lib/deploy"
	dt "gobootc.dev/lib/deploy/deploytest"
	"gobootc.dev/lib/gc"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/store"
)

const sr = layout.DefaultStateroot

var common = []dt.File{
	dt.D("usr"), dt.D("usr/bin"), dt.F("usr/bin/x", "shared binary\n"),
	dt.D("etc"), dt.F("etc/hostname", "image\n"),
	dt.D("usr/lib"), dt.D("usr/lib/bootc"), dt.D("usr/lib/bootc/kargs.d"),
	dt.F("usr/lib/bootc/kargs.d/10.toml", "kargs = [\"quiet\"]\n"),
}

func kernel(v string) []dt.File {
	dir := "usr/lib/modules/6.12." + v
	return []dt.File{dt.D("usr/lib/modules"), dt.D(dir), dt.F(dir+"/vmlinuz", "kernel-"+v), dt.F(dir+"/initramfs.img", "initrd-"+v)}
}

func unique(name string) []dt.File {
	return []dt.File{dt.D("usr/share"), dt.F("usr/share/"+name, "content only image "+name+" has\n")}
}

type fixture struct {
	r      layout.Root
	s      *store.Store
	images map[string]record.Image
	deps   map[string]*record.Deployment
}

func (f *fixture) fetch(t *testing.T, name, kv string) {
	f.images[name] = dt.Fetch(t, f.r, name, common, kernel(kv), unique(name))
}

func (f *fixture) build(t *testing.T, name string) {
	t.Helper()
	d, err := deploy.Build(context.Background(), deploy.Options{Root: f.r, Store: f.s, Stateroot: sr, Image: f.images[name].ManifestDigest})
	if err != nil {
		t.Fatal(err)
	}
	f.deps[name] = d
}

func newFixture(t *testing.T) *fixture {
	dir := t.TempDir()
	r := layout.New(filepath.Join(dir, "phys"), filepath.Join(dir, "run"))
	if err := r.Init(sr); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(r.Store())
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{r: r, s: s, images: map[string]record.Image{}, deps: map[string]*record.Deployment{}}
}

// host builds the scene: a rollback, b booted, c old, d pinned (sharing a's kernel), e staged,
// f only in the cached update, g fetched and never deployed.
func host(t *testing.T) *fixture {
	f := newFixture(t)
	for _, im := range []struct{ name, kv string }{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "1"}, {"e", "5"}, {"f", "6"}, {"g", "7"}} {
		f.fetch(t, im.name, im.kv)
	}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		f.build(t, n)
	}
	f.deps["d"].Pinned = true
	if err := record.WriteDeployment(f.r, f.deps["d"]); err != nil {
		t.Fatal(err)
	}
	dt.Boot(t, f.r, f.deps["b"].ID, f.deps["b"].ID, f.deps["a"].ID)
	if err := os.MkdirAll(f.r.Etc(sr, f.deps["c"].ID), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := record.Write(f.r.Staged(), &record.Staged{Version: record.FormatVersion, Stateroot: sr, ID: f.deps["e"].ID}); err != nil {
		t.Fatal(err)
	}
	if err := record.Write(f.r.CachedUpdate(sr), &record.CachedUpdate{Version: record.FormatVersion, Image: f.images["f"], CheckedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return f
}

// snapshot maps every path under root to a description of what it is, for comparing trees.
func snapshot(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var sb unix.Stat_t
		if err := unix.Lstat(p, &sb); err != nil {
			return err
		}
		desc := d.Type().String()
		if d.Type().IsRegular() {
			h := sha256.New()
			fh, err := os.Open(p)
			if err != nil {
				return err
			}
			io.Copy(h, fh)
			fh.Close()
			desc += fmt.Sprintf(" %x ino %d", h.Sum(nil), sb.Ino)
		}
		out[p] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestCollectKeepsExactlyWhatIsUsed(t *testing.T) {
	f := host(t)
	r := f.r
	// Leftovers of crashes: an interrupted build, an interrupted boot copy, the state of a
	// deployment that no longer exists, a tree whose record was already removed.
	leftovers := []string{
		filepath.Join(r.Deploy(sr), ".0123456789ab.0.tmp", "usr"),
		filepath.Join(filepath.Dir(r.BootFiles("sha256:0")), ".sha256-"+strings.Repeat("9", 64)+".tmp", "vmlinuz"),
		filepath.Join(r.State(sr), "0123456789ab.4", "etc"),
		filepath.Join(r.Deploy(sr), "0123456789ab.5", "usr"),
	}
	for _, p := range leftovers {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	kept := []string{"a", "b", "d", "e"}
	keptTrees := map[string]map[string]string{}
	for _, n := range kept {
		keptTrees[n] = snapshot(t, r.Deployment(sr, f.deps[n].ID))
	}
	bootedEtc := snapshot(t, r.Etc(sr, f.deps["b"].ID))
	varBefore := snapshot(t, r.Var(sr))
	layersBefore, _ := f.s.Layers()

	before := snapshot(t, r.Phys)
	dry, err := gc.Run(context.Background(), gc.Options{Root: r, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, r.Phys); len(after) != len(before) {
		t.Fatalf("dry run changed the tree: %d paths before, %d after", len(before), len(after))
	}

	res, err := gc.Run(context.Background(), gc.Options{Root: r})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())

	var wantKept []string
	for _, n := range kept {
		wantKept = append(wantKept, sr+"/"+f.deps[n].ID)
	}
	sort.Strings(wantKept)
	if !slices.Equal(res.Kept, wantKept) {
		t.Errorf("kept %v, want %v", res.Kept, wantKept)
	}
	if want := []string{sr + "/" + f.deps["c"].ID}; !slices.Equal(res.Deployments, want) {
		t.Errorf("removed deployments %v, want %v", res.Deployments, want)
	}
	wantImages := []string{f.images["c"].ManifestDigest, f.images["g"].ManifestDigest}
	sort.Strings(wantImages)
	if !slices.Equal(res.Images, wantImages) {
		t.Errorf("removed images %v, want %v", res.Images, wantImages)
	}
	if want := []string{f.deps["c"].BootDigest}; !slices.Equal(res.BootDirs, want) {
		t.Errorf("removed boot dirs %v, want %v", res.BootDirs, want)
	}
	// c's and g's own layer and kernel layer; 6 objects: their unique file, kernel, initramfs.
	if res.Layers != 4 || res.Objects != 6 {
		t.Errorf("removed %d layers and %d objects, want 4 and 6", res.Layers, res.Objects)
	}
	if len(res.Leftovers) != len(leftovers) {
		t.Errorf("leftovers removed %v, want %d", res.Leftovers, len(leftovers))
	}
	minBytes := int64(2 * (len("content only image c has\n") + len("kernel-3") + len("initrd-3")))
	if res.Bytes < minBytes {
		t.Errorf("freed %d bytes, want at least %d", res.Bytes, minBytes)
	}
	if dry.Bytes != res.Bytes || dry.Layers != res.Layers || dry.Objects != res.Objects ||
		!slices.Equal(dry.Deployments, res.Deployments) || !slices.Equal(dry.Images, res.Images) {
		t.Errorf("dry run predicted %+v, run did %+v", dry, res)
	}

	// c is gone entirely.
	c := f.deps["c"]
	for _, p := range []string{r.Deployment(sr, c.ID), r.DeploymentRecord(sr, c.ID), filepath.Dir(r.Etc(sr, c.ID)),
		r.Image(c.Image.ManifestDigest), r.Image(f.images["g"].ManifestDigest), r.BootFiles(c.BootDigest)} {
		if exists(p) {
			t.Errorf("%s survived", p)
		}
	}
	for _, p := range leftovers {
		if exists(p) {
			t.Errorf("leftover %s survived", p)
		}
	}

	// Everything kept is intact: trees (same inodes and content), records, images, layers,
	// objects, boot files, the booted /etc and /var.
	for _, n := range kept {
		d := f.deps[n]
		if got := snapshot(t, r.Deployment(sr, d.ID)); !maps.Equal(got, keptTrees[n]) {
			t.Errorf("deployment %s changed", n)
		}
		if _, err := record.ReadDeployment(r, sr, d.ID); err != nil {
			t.Errorf("record of %s: %v", n, err)
		}
		for _, name := range []string{"vmlinuz", "initramfs.img"} {
			if !exists(filepath.Join(r.BootFiles(d.BootDigest), name)) {
				t.Errorf("boot file %s of %s missing", name, n)
			}
		}
	}
	if !maps.Equal(snapshot(t, r.Etc(sr, f.deps["b"].ID)), bootedEtc) || !maps.Equal(snapshot(t, r.Var(sr)), varBefore) {
		t.Error("booted /etc or /var changed")
	}
	keepLayers := map[digest.Digest]bool{}
	for _, n := range []string{"a", "b", "d", "e", "f"} {
		if _, err := record.ReadFetchedImage(r, f.images[n].ManifestDigest); err != nil {
			t.Errorf("image %s: %v", n, err)
		}
		for _, l := range f.images[n].Layers {
			keepLayers[digest.Digest(l)] = true
		}
	}
	layersAfter, _ := f.s.Layers()
	for _, l := range layersBefore {
		if keepLayers[l] != slices.Contains(layersAfter, l) {
			t.Errorf("layer %s: kept=%v, present after=%v", l, keepLayers[l], slices.Contains(layersAfter, l))
		}
	}
	objs, err := f.s.Objects(layersAfter...)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range objs {
		p, _ := f.s.ObjectPath(k)
		if !exists(p) {
			t.Errorf("object %s of a kept layer removed", k)
		}
	}

	again, err := gc.Run(context.Background(), gc.Options{Root: r})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Empty() || again.Summary() != "Garbage collection: nothing to remove." {
		t.Errorf("second run removed %+v", again)
	}
}

func TestCollectKeepsEntriesAndStagedWithoutBoot(t *testing.T) {
	f := newFixture(t)
	for _, n := range []string{"a", "b", "c"} {
		f.fetch(t, n, n)
		f.build(t, n)
	}
	r := f.r
	// Not booted (an installed root before its first boot): a has a boot entry, b is staged.
	if err := os.MkdirAll(r.Entries(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.Entries(), "a.conf"), []byte("title a\nlinux /bootc/"+filepath.Base(r.BootFiles(f.deps["a"].BootDigest))+"/vmlinuz\noptions root=x bootc.deployment=default/"+f.deps["a"].ID+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := record.Write(r.Staged(), &record.Staged{Version: record.FormatVersion, Stateroot: sr, ID: f.deps["b"].ID}); err != nil {
		t.Fatal(err)
	}
	res, err := gc.Run(context.Background(), gc.Options{Root: r})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{sr + "/" + f.deps["c"].ID}; !slices.Equal(res.Deployments, want) {
		t.Errorf("removed %v, want %v", res.Deployments, want)
	}
	for _, n := range []string{"a", "b"} {
		if !exists(r.Deployment(sr, f.deps[n].ID)) || !exists(r.BootFiles(f.deps[n].BootDigest)) {
			t.Errorf("%s or its boot files removed", n)
		}
	}
}

func TestCollectRefusesUnreadableState(t *testing.T) {
	f := newFixture(t)
	f.fetch(t, "a", "1")
	f.build(t, "a")
	// The booted marker names a deployment that has no record: nothing is certain, so
	// nothing may go.
	if err := record.Write(f.r.Booted(), &record.Booted{Version: record.FormatVersion, Stateroot: sr, ID: "0000000000ff.0"}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, f.r.Phys)
	if _, err := gc.Run(context.Background(), gc.Options{Root: f.r}); err == nil || !strings.Contains(err.Error(), "has no record") {
		t.Fatalf("err = %v", err)
	}
	if !maps.Equal(snapshot(t, f.r.Phys), before) {
		t.Error("a failed collection removed something")
	}
}

func TestSummary(t *testing.T) {
	cases := []struct {
		r    gc.Result
		want string
	}{
		{gc.Result{}, "Garbage collection: nothing to remove."},
		{gc.Result{Deployments: []string{"x"}, Images: []string{"a", "b"}, Layers: 3, Objects: 1, Bytes: 1500},
			"Garbage collection: removed 1 deployment, 2 images, 3 layers, 1 object; 1.5 kB freed."},
		{gc.Result{DryRun: true, Objects: 2, Bytes: 12},
			"Garbage collection: would remove 2 objects; 12 B freed."},
	}
	for _, c := range cases {
		if got := c.r.Summary(); got != c.want {
			t.Errorf("Summary() = %q, want %q", got, c.want)
		}
	}
}

// An image `switch --retain` kept stays, with its layers, after its deployment is collected,
// until it is let go.
func TestRetainedImageKept(t *testing.T) {
	f := host(t)
	c := f.images["c"]
	if err := record.RetainImage(f.r, sr, record.RetainedImage{ManifestDigest: c.ManifestDigest, Image: c.Ref.Image, Time: time.Now()}); err != nil {
		t.Fatal(err)
	}
	res, err := gc.Run(context.Background(), gc.Options{Root: f.r})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{sr + "/" + f.deps["c"].ID}; !slices.Equal(res.Deployments, want) {
		t.Errorf("removed deployments %v, want %v", res.Deployments, want)
	}
	if want := []string{f.images["g"].ManifestDigest}; !slices.Equal(res.Images, want) {
		t.Errorf("removed images %v, want only %v: the retained one stays", res.Images, want)
	}
	for _, l := range c.Layers {
		if ok, err := f.s.HasLayer(digest.Digest(l)); err != nil || !ok {
			t.Errorf("layer %s of the retained image: present %v, %v", l, ok, err)
		}
	}
	if gone, err := record.Unretain(f.r, sr, nil); err != nil || len(gone) != 1 {
		t.Fatalf("Unretain = %v, %v", gone, err)
	}
	if res, err = gc.Run(context.Background(), gc.Options{Root: f.r}); err != nil {
		t.Fatal(err)
	}
	if want := []string{c.ManifestDigest}; !slices.Equal(res.Images, want) {
		t.Errorf("after unretain removed images %v, want %v", res.Images, want)
	}
}
