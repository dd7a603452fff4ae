package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.podman.io/image/v5/types"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/imgref"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
	"gobootc.dev/lib/store"
	"gobootc.dev/lib/sysroottest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" && binErr == nil && os.Getenv("BOOTC_TEST_BIN") == "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func TestFetchRegistry(t *testing.T) {
	e := newEnv(t)
	img := fetchtest.Bootable("2.0", fetchtest.File{Path: "usr/share/x", Data: []byte("x")})
	img.Labels["org.opencontainers.image.created"] = "2026-03-04T05:06:07Z"
	b := e.push("os:2", img)
	ref := e.proxy.Ref("os:2")

	c, prog := e.cli(ref)
	c.Result = filepath.Join(t.TempDir(), "result.json")
	out, stderr, err := run(t, e.root(c))
	if err != nil {
		t.Fatalf("fetch: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "Fetched "+ref) || strings.Contains(stderr, "warning") {
		t.Errorf("stdout %q stderr %q", out, stderr)
	}
	// Registries and proxies see who pulls, as they do for upstream bootc.
	if len(e.proxy.UserAgents()) == 0 {
		t.Error("no request went through the proxy")
	}
	for _, ua := range e.proxy.UserAgents() {
		if !strings.HasPrefix(ua, "bootc/"+cli.Version) {
			t.Errorf("a request carried User-Agent %q, want bootc/%s", ua, cli.Version)
		}
	}
	fi := readFetched(t, e, b.ManifestDigest)
	im := fi.Image
	created := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if im.Ref != (host.ImageReference{Image: ref, Transport: "registry"}) || im.ConfigDigest != b.ConfigDigest.String() ||
		im.Architecture != "amd64" || im.Version != "2.0" || im.Created == nil || !im.Created.Equal(created) || len(im.Layers) != 3 {
		t.Errorf("record = %+v", im)
	}
	for i, l := range im.Layers {
		if l != b.DiffIDs[i].String() {
			t.Errorf("layer %d = %s, want %s", i, l, b.DiffIDs[i])
		}
	}
	if man, _ := os.ReadFile(e.sys.Root.ImageManifest(b.ManifestDigest.String())); !bytes.Equal(man, b.Manifest) {
		t.Error("stored manifest differs from the pushed one")
	}
	if cfg, _ := os.ReadFile(e.sys.Root.ImageConfig(b.ManifestDigest.String())); !bytes.Equal(cfg, b.Config) {
		t.Error("stored config differs from the pushed one")
	}
	st := openStore(t, e)
	for _, d := range b.DiffIDs {
		if ok, _ := st.HasLayer(d); !ok {
			t.Errorf("layer %s not in store", d)
		}
	}
	var res Result
	raw, _ := os.ReadFile(c.Result)
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, s := range b.LayerSizes {
		sum += s
	}
	if res.ManifestDigest != b.ManifestDigest.String() || res.Version != "2.0" || !res.Changed || res.AlreadyStaged ||
		res.LayersFetched != 3 || res.LayersReused != 0 || res.BytesFetched != sum {
		t.Errorf("result = %+v (blob bytes %d)", res, sum)
	}
	evs := checkProgress(t, prog.Bytes())
	last := evs[len(evs)-1]
	if last["task"] != "pulling" || last["steps"] != float64(3) || last["stepsTotal"] != float64(3) ||
		last["bytes"] != last["bytesTotal"] || len(last["subtasks"].([]any)) != 3 {
		t.Errorf("last progress event = %v", last)
	}

	// A second run downloads no layer and reports it as unchanged once booted.
	gets := e.proxy.BlobGets()
	e.bootFrom("a", ref, b, nil)
	c2, prog2 := e.cli("")
	c2.Result = c.Result
	if _, stderr, err := run(t, e.root(c2)); err != nil {
		t.Fatalf("refetch: %v\n%s", err, stderr)
	}
	if n := e.proxy.BlobGets() - gets; n != 1 { // the config only
		t.Errorf("refetch made %d blob requests, want 1 (config)", n)
	}
	raw, _ = os.ReadFile(c.Result)
	json.Unmarshal(raw, &res)
	if res.Changed || res.LayersFetched != 0 || res.LayersReused != 3 || res.BytesFetched != 0 {
		t.Errorf("refetch result = %+v", res)
	}
	evs = checkProgress(t, prog2.Bytes())
	if last := evs[len(evs)-1]; last["stepsCached"] != float64(3) || last["bytesCached"] != last["bytesTotal"] {
		t.Errorf("refetch progress = %v", last)
	}
}

func TestManifestListPicksThisArchitecture(t *testing.T) {
	e := newEnv(t)
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64"
	}
	mine, theirs := fetchtest.Bootable("1"), fetchtest.Bootable("1")
	mine.Architecture, theirs.Architecture = runtime.GOARCH, other
	theirs.Layers = append(theirs.Layers, fetchtest.Layer{Files: []fetchtest.File{{Path: "other", Data: []byte("o")}}})
	_, built, err := fetchtest.WriteIndexLayout(e.oci, "multi", theirs, mine)
	if err != nil {
		t.Fatal(err)
	}
	e.reg.Push("oci:"+e.oci+":multi", "os:multi")
	c, _ := e.cli(e.reg.Ref("os:multi"))
	if _, stderr, err := run(t, e.root(c)); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	fi := readFetched(t, e, built[1].ManifestDigest)
	if fi.Image.Architecture != runtime.GOARCH || len(fi.Image.Layers) != 2 {
		t.Errorf("fetched %+v", fi.Image)
	}
	if _, err := os.Stat(e.sys.Root.Image(built[0].ManifestDigest.String())); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the other architecture was fetched too: %v", err)
	}
}

// A layer already stored under another compression is identified by its diff ID and not
// downloaded again.
func TestLayerReuseAcrossCompression(t *testing.T) {
	e := newEnv(t)
	files := fetchtest.ManyFiles("usr/share/data", 50, 4096)
	a := fetchtest.Bootable("1")
	a.Layers = append(a.Layers, fetchtest.Layer{Files: files, Compression: fetchtest.Gzip})
	e.push("os:1", a)
	b := fetchtest.Bootable("1") // same /etc layer; only the config and the data layer's encoding differ
	b.Labels["org.opencontainers.image.version"] = "2"
	b.Layers = append(b.Layers, fetchtest.Layer{Files: files, Compression: fetchtest.Zstd})
	bb := e.push("os:2", b)
	c, _ := e.cli(e.proxy.Ref("os:1"))
	if _, _, err := run(t, e.root(c)); err != nil {
		t.Fatal(err)
	}
	before := e.proxy.BlobBytes()
	c, _ = e.cli(e.proxy.Ref("os:2"))
	c.Result = filepath.Join(t.TempDir(), "r.json")
	if _, _, err := run(t, e.root(c)); err != nil {
		t.Fatal(err)
	}
	if got := e.proxy.BlobBytes() - before; got != int64(len(bb.Config)) {
		t.Errorf("second image downloaded %d blob bytes, want only its config (%d)", got, len(bb.Config))
	}
	var res Result
	raw, _ := os.ReadFile(c.Result)
	json.Unmarshal(raw, &res)
	if res.LayersReused != 3 || res.LayersFetched != 0 {
		t.Errorf("result %+v", res)
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t)
	ref := e.reg.Ref("os:stable")
	v1 := e.push("os:stable", fetchtest.Bootable("1"))
	e.bootFrom("a", ref, v1, nil)

	c, _ := e.cli("")
	c.Check = true
	out, stderr, err := run(t, e.root(c))
	if err != nil || out != "No changes in: "+ref+"\n" {
		t.Fatalf("check unchanged: %q %v %s", out, err, stderr)
	}

	v2img := fetchtest.Bootable("2", fetchtest.File{Path: "new", Data: fetchtest.RandomBytes(1, 3000)})
	v2 := e.push("os:stable", v2img)
	out, stderr, err = run(t, e.root(c))
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"Update available for: " + ref + "\n", "  Version: 2\n", "  Digest: " + v2.ManifestDigest.String(),
		"Total new layers: 2 ", "Removed layers:   1"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// The pending update is cached for status, and nothing was fetched into the store.
	h, err := status.Build(status.Options{Root: e.sys.Root, Cmdline: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	if cu := h.Status.Booted.CachedUpdate; cu == nil || cu.ImageDigest != v2.ManifestDigest.String() || cu.Version == nil || *cu.Version != "2" {
		t.Errorf("cachedUpdate = %+v", cu)
	}
	if man, _ := os.ReadFile(cachedManifestPath(e.sys.Root, "default")); !bytes.Equal(man, v2.Manifest) {
		t.Error("pending manifest not cached")
	}
	if layers, _ := openStore(t, e).Layers(); len(layers) != 0 {
		t.Errorf("--check imported layers %v", layers)
	}
	if _, err := os.Stat(e.sys.Root.Image(v2.ManifestDigest.String())); !errors.Is(err, fs.ErrNotExist) {
		t.Error("--check wrote into images/")
	}

	// Back to v1: the stale cached update goes away.
	if _, err := fetchtest.WriteLayout(e.oci, "v1", fetchtest.Bootable("1")); err != nil {
		t.Fatal(err)
	}
	e.reg.Push("oci:"+e.oci+":v1", "os:stable")
	if out, _, err = run(t, e.root(c)); err != nil || !strings.HasPrefix(out, "No changes") {
		t.Fatalf("%q %v", out, err)
	}
	if _, err := record.ReadCachedUpdate(e.sys.Root, "default"); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("cached update kept: %v", err)
	}
}

func TestTagReplacesTrackedTag(t *testing.T) {
	e := newEnv(t)
	v1 := e.push("os:1", fetchtest.Bootable("1"))
	v2 := e.push("os:2", fetchtest.Bootable("2", fetchtest.File{Path: "two", Data: []byte("2")}))
	e.bootFrom("a", e.reg.Ref("os:1"), v1, &host.ImageSignature{Mode: host.SignatureInsecure})
	c, _ := e.cli("")
	c.Tag = "2"
	if _, stderr, err := run(t, e.root(c)); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	fi := readFetched(t, e, v2.ManifestDigest)
	want := host.ImageReference{Image: e.reg.Ref("os:2"), Transport: "registry", Signature: &host.ImageSignature{Mode: host.SignatureInsecure}}
	if fi.Image.Ref.Image != want.Image || fi.Image.Ref.Signature == nil || *fi.Image.Ref.Signature != *want.Signature {
		t.Errorf("ref = %+v", fi.Image.Ref)
	}
}

func TestMissingBootcLabelWarns(t *testing.T) {
	e := newEnv(t)
	img := fetchtest.Bootable("1")
	delete(img.Labels, "containers.bootc")
	delete(img.Labels, "org.opencontainers.image.version")
	img.Labels["version"] = "legacy-9"
	b := e.push("plain:1", img)
	c, _ := e.cli(e.reg.Ref("plain:1"))
	_, stderr, err := run(t, e.root(c))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "lacks the label containers.bootc=1") {
		t.Errorf("no warning: %q", stderr)
	}
	if v := readFetched(t, e, b.ManifestDigest).Image.Version; v != "legacy-9" {
		t.Errorf("version from the fallback label = %q", v)
	}
}

// Every failure is one line naming the reference.
func TestErrors(t *testing.T) {
	e := newEnv(t)
	e.push("os:1", fetchtest.Bootable("1"))
	port, err := fetchtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	closed := "127.0.0.1:" + strconv.Itoa(port)
	fetchtest.WriteRegistriesConf(e.conf, e.reg.Host, e.proxy.Host, closed)
	for _, tc := range []struct {
		name, image, transport, want string
		is                           error
	}{
		{"malformed", "Bad Name!!", "", "Bad Name!!", imgref.ErrInvalidReference},
		{"unknown transport", "x", "ftp", "unknown transport", imgref.ErrUnknownTransport},
		{"unknown tag", e.reg.Ref("os:nope"), "", e.reg.Ref("os:nope"), nil},
		{"unknown repository", e.reg.Ref("missing:1"), "", "missing", nil},
		{"connection refused", closed + "/os:1", "", "connection refused", nil},
		{"missing oci dir", "/nonexistent/oci:x", "oci", "/nonexistent/oci", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := e.cli(tc.image)
			if tc.transport != "" {
				c.Transport = tc.transport
			}
			_, _, err := run(t, e.root(c))
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q: want one line containing %q", msg, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
	if layers, _ := openStore(t, e).Layers(); len(layers) != 0 {
		t.Errorf("failed fetches left layers %v", layers)
	}
}

// A corrupted blob is rejected and leaves nothing in the store; so is a blob that unpacks to the
// right content but is not the blob the manifest names.
func TestCorruptBlob(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mangle func(t *testing.T, path string, b fetchtest.Built)
		is     error
	}{
		{"flipped byte", func(t *testing.T, p string, _ fetchtest.Built) {
			data, _ := os.ReadFile(p)
			data[len(data)/2] ^= 0xff
			os.WriteFile(p, data, 0o644)
		}, nil},
		{"other encoding of the same content", func(t *testing.T, p string, b fetchtest.Built) {
			raw, err := fetchtest.TarFiles(fetchtest.ManyFiles("d", 20, 100))
			if err != nil {
				t.Fatal(err)
			}
			// Same tar, uncompressed instead of gzip: the diff ID matches, the digest does not.
			os.WriteFile(p, raw, 0o644)
		}, ErrBlobDigest},
		{"truncated", func(t *testing.T, p string, _ fetchtest.Built) {
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)-10], 0o644)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "oci")
			img := fetchtest.Bootable("1")
			img.Layers = append(img.Layers, fetchtest.Layer{Files: fetchtest.ManyFiles("d", 20, 100), Compression: fetchtest.Gzip})
			b, err := fetchtest.WriteLayout(dir, "x", img)
			if err != nil {
				t.Fatal(err)
			}
			last := len(b.LayerDigests) - 1
			bad := b.LayerDigests[last]
			tc.mangle(t, filepath.Join(dir, "blobs", "sha256", bad.Encoded()), b)
			sys := sysroottest.New(t).Root
			c := &CLI{Image: dir + ":x", Transport: "oci", Cmdline: "/dev/null", LockWait: time.Second, AuthSearch: []string{}}
			c.Sysroot, c.RunDir = sys.Phys, sys.Run
			_, _, err = run(t, c)
			if err == nil {
				t.Fatal("corrupted blob accepted")
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "oci:"+dir+":x") || !strings.Contains(msg, bad.String()) {
				t.Errorf("error %q does not name the reference and the blob", msg)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			st, err := store.Open(sys.Store())
			if err != nil {
				t.Fatal(err)
			}
			if ok, _ := st.HasLayer(b.DiffIDs[last]); ok {
				t.Error("corrupted layer recorded as complete")
			}
			if ents, _ := os.ReadDir(filepath.Join(sys.Store(), "tmp")); len(ents) != 0 {
				t.Errorf("leftovers in tmp/: %v", ents)
			}
			if _, err := os.Stat(sys.ImageRecord(b.ManifestDigest.String())); !errors.Is(err, fs.ErrNotExist) {
				t.Error("image record written for a failed fetch")
			}
			// The good layers before it are complete and stay usable.
			for _, d := range b.DiffIDs[:last] {
				if ok, _ := st.HasLayer(d); !ok {
					t.Errorf("good layer %s missing", d)
				}
			}
		})
	}
}

func TestLockBusy(t *testing.T) {
	e := newEnv(t)
	e.push("os:1", fetchtest.Bootable("1"))
	l, err := lock.Acquire(t.Context(), e.sys.Root.Lock(), lock.Options{Operation: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	c, _ := e.cli(e.reg.Ref("os:1"))
	c.LockWait = 300 * time.Millisecond
	_, stderr, err := run(t, e.root(c))
	if !errors.Is(err, lock.ErrBusy) || !strings.Contains(stderr, "test") {
		t.Errorf("err %v, stderr %q", err, stderr)
	}
	// --check does not need the lock.
	c.Check = true
	if out, _, err := run(t, e.root(c)); err != nil || !strings.HasPrefix(out, "Update available") {
		t.Errorf("check under a held lock: %q %v", out, err)
	}
}

func TestAnonymousWithoutPullSecret(t *testing.T) {
	dir := t.TempDir()
	c := &CLI{AuthSearch: []string{filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")}}
	sys, err := c.systemContext()
	if err != nil {
		t.Fatal(err)
	}
	if sys.DockerAuthConfig == nil || *sys.DockerAuthConfig != (types.DockerAuthConfig{}) || sys.AuthFilePath != "" {
		t.Errorf("no pull secret: auth %+v file %q", sys.DockerAuthConfig, sys.AuthFilePath)
	}
	os.WriteFile(filepath.Join(dir, "b.json"), []byte(`{"auths":{}}`), 0o600)
	if sys, _ = c.systemContext(); sys.DockerAuthConfig != nil || sys.AuthFilePath != filepath.Join(dir, "b.json") {
		t.Errorf("pull secret not used: %+v %q", sys.DockerAuthConfig, sys.AuthFilePath)
	}
	c.Authfile = filepath.Join(dir, "missing.json")
	if _, err := c.systemContext(); err == nil {
		t.Error("missing --authfile accepted")
	}
}

func TestFlagConflicts(t *testing.T) {
	for _, c := range []*CLI{
		{Transport: "oci"},
		{Image: "quay.io/a/b:1", Tag: "2"},
		{ProgressFD: 987},
	} {
		if err := c.validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c := &CLI{Cmdline: "/dev/null"}
	c.Sysroot = t.TempDir()
	if _, _, err := run(t, c); !errors.Is(err, ErrNothingToFetch) {
		t.Errorf("no image, not booted: %v", err)
	}
}

// A layer that writes through a symlink it made itself is refused by the fetch, in one line
// naming the layer once, and no image is recorded.
func TestHostileLayerRefusedAtFetch(t *testing.T) {
	e := newEnv(t)
	img := fetchtest.Bootable("2.0",
		fetchtest.File{Path: "usr/share/a", Mode: fs.ModeSymlink | 0o777, Link: "/etc"},
		fetchtest.File{Path: "usr/share/a/passwd", Data: []byte("root::0:0::/:/bin/sh\n")})
	b := e.push("os:hostile", img)
	c, _ := e.cli(e.proxy.Ref("os:hostile"))
	_, stderr, err := run(t, e.root(c))
	if !errors.Is(err, store.ErrUnsafeEntry) {
		t.Fatalf("fetch = %v, want an unsafe entry refused\n%s", err, stderr)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || strings.Count(msg, "sha256:") != 1 || !strings.Contains(msg, `entry "usr/share/a/passwd"`) {
		t.Errorf("error %q: want one line naming the layer once and the entry", msg)
	}
	if _, err := record.ReadFetchedImage(e.sys.Root, b.ManifestDigest.String()); !errors.Is(err, record.ErrNotFound) {
		t.Errorf("the refused image was recorded: %v", err)
	}
}

// Entries the store leaves out on purpose are said: a device node costs a warning naming the
// layer and the entry (the first few of a layer; a count for the rest), and the fetch goes on.
func TestDeviceNodeWarned(t *testing.T) {
	e := newEnv(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdrs := []*tar.Header{{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755}}
	for _, name := range []string{"mem", "null", "zero", "full", "random", "urandom"} {
		hdrs = append(hdrs, &tar.Header{Name: "dev/" + name, Typeflag: tar.TypeChar, Mode: 0o600, Devmajor: 1, Devminor: 1})
	}
	for _, h := range hdrs {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	img := fetchtest.Bootable("2.0")
	img.Layers = append(img.Layers, fetchtest.Layer{Tar: buf.Bytes()})
	e.push("os:dev", img)
	c, _ := e.cli(e.proxy.Ref("os:dev"))
	_, stderr, err := run(t, e.root(c))
	if err != nil {
		t.Fatalf("fetch: %v\n%s", err, stderr)
	}
	if !regexp.MustCompile(`(?m)^warning: layer sha256:[0-9a-f]{64}: skipping character device "dev/mem"`).MatchString(stderr) {
		t.Errorf("stderr %q: want a warning naming the layer and dev/mem", stderr)
	}
	// Six nodes: three named, then a count.
	if n := strings.Count(stderr, "warning: "); n != 4 || !strings.Contains(stderr, ": 3 more entries skipped likewise\n") {
		t.Errorf("stderr %q: want three warnings and a count of the other three", stderr)
	}
}
