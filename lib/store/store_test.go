package store

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func TestOpenCreatesPrivateLayoutAndCleansTmp(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "bootc")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	openStore(t, dir)
	if m := lstat(t, dir).Mode & 0o7777; m != 0o700 {
		t.Errorf("store mode %o, want 700", m)
	}
	for _, sub := range []string{"objects", "layers", "tmp"} {
		if st := lstat(t, filepath.Join(dir, sub)); st.Mode&unix.S_IFMT != unix.S_IFDIR {
			t.Errorf("%s is not a directory", sub)
		}
	}
	left := filepath.Join(dir, "tmp", "import-123", "obj-1")
	if err := os.MkdirAll(filepath.Dir(left), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(left, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	openStore(t, dir)
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp not cleaned on open: %v", ents)
	}
}

func TestImportComposeMetadata(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, filepath.Join(root, "store"))
	data := layerTar(t,
		tent{name: "./", typ: tar.TypeDir, mode: 0o755},
		dir("usr/"),
		dir("usr/bin/"),
		tent{name: "usr/bin/su", mode: 0o4755, body: "setuid binary"},
		tent{name: "usr/bin/sg", mode: 0o2711, gid: 5, body: "setgid binary"},
		tent{name: "usr/bin/ping", mode: 0o755, body: "ping binary", xattrs: map[string]string{"security.capability": string(capNetRawEP)}},
		tent{name: "usr/share/doc/x", mode: 0o640, uid: 1000, gid: 1001, body: "doc", xattrs: map[string]string{"user.origin": "test", "user.empty": ""}},
		tent{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		tent{name: "ro/", typ: tar.TypeDir, mode: 0o555, uid: 7, gid: 8, xattrs: map[string]string{"user.dir": "yes"}},
		file("ro/inside", "child of a read-only dir"),
		symlink("usr/bin/sh", "bash"),
		tent{name: "abslink", typ: tar.TypeSymlink, link: "/etc/os-release", uid: 3, gid: 4},
		hardlink("usr/bin/su2", "usr/bin/su"),
		hardlink("usr/bin/ping2", "/usr/bin/ping"),
		file("empty", ""),
	)
	d, st := mustImport(t, s, data)
	if st.Files != 6 || st.NewObjects != 6 || st.ReusedObjects != 0 || st.Entries != 15 {
		t.Errorf("stats %+v: want 15 entries, 6 files, 6 new objects", st)
	}
	if st.Bytes != int64(len(data)) {
		t.Errorf("stats bytes %d, want %d", st.Bytes, len(data))
	}
	if ok, err := s.HasLayer(d); err != nil || !ok {
		t.Fatalf("HasLayer = %v, %v", ok, err)
	}
	dest := filepath.Join(root, "deploy")
	mustCompose(t, s, dest, d)

	checks := []struct {
		path      string
		mode      uint32 // type and permission bits
		uid, gid  uint32
		content   string
		linkCount uint64 // 0: not checked
	}{
		{"usr/bin/su", unix.S_IFREG | 0o4755, 0, 0, "setuid binary", 0},
		{"usr/bin/sg", unix.S_IFREG | 0o2711, 0, 5, "setgid binary", 0},
		{"usr/bin/ping", unix.S_IFREG | 0o755, 0, 0, "ping binary", 0},
		{"usr/share/doc/x", unix.S_IFREG | 0o640, 1000, 1001, "doc", 0},
		{"usr/share", unix.S_IFDIR | 0o755, 0, 0, "", 0},
		{"tmp", unix.S_IFDIR | 0o1777, 0, 0, "", 0},
		{"ro", unix.S_IFDIR | 0o555, 7, 8, "", 0},
		{"ro/inside", unix.S_IFREG | 0o644, 0, 0, "child of a read-only dir", 0},
		{"abslink", unix.S_IFLNK | 0o777, 3, 4, "", 0},
		{"empty", unix.S_IFREG | 0o644, 0, 0, "", 0},
	}
	for _, c := range checks {
		p := filepath.Join(dest, c.path)
		st := lstat(t, p)
		if st.Mode != c.mode || st.Uid != c.uid || st.Gid != c.gid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", c.path, st.Mode, st.Uid, st.Gid, c.mode, c.uid, c.gid)
		}
		if st.Mtim.Sec != 0 {
			t.Errorf("%s: mtime %d, want 0", c.path, st.Mtim.Sec)
		}
		if c.mode&unix.S_IFMT == unix.S_IFREG {
			if got := readFile(t, p); got != c.content {
				t.Errorf("%s: content %q, want %q", c.path, got, c.content)
			}
		}
	}
	if l, _ := os.Readlink(filepath.Join(dest, "usr/bin/sh")); l != "bash" {
		t.Errorf("usr/bin/sh -> %q, want bash", l)
	}
	if l, _ := os.Readlink(filepath.Join(dest, "abslink")); l != "/etc/os-release" {
		t.Errorf("abslink -> %q", l)
	}
	if v, ok := getxattr(t, filepath.Join(dest, "usr/bin/ping"), "security.capability"); !ok || !bytes.Equal(v, capNetRawEP) {
		t.Errorf("security.capability = %x, %v; want %x", v, ok, capNetRawEP)
	}
	if getcap, err := exec.LookPath("getcap"); err == nil {
		out, err := exec.Command(getcap, filepath.Join(dest, "usr/bin/ping")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "cap_net_raw=ep") {
			t.Errorf("getcap: %s %v", out, err)
		}
	}
	if v, ok := getxattr(t, filepath.Join(dest, "usr/share/doc/x"), "user.origin"); !ok || string(v) != "test" {
		t.Errorf("user.origin = %q, %v", v, ok)
	}
	if _, ok := getxattr(t, filepath.Join(dest, "usr/share/doc/x"), "user.empty"); !ok {
		t.Errorf("empty user.empty xattr lost")
	}
	if v, ok := getxattr(t, filepath.Join(dest, "ro"), "user.dir"); !ok || string(v) != "yes" {
		t.Errorf("dir xattr user.dir = %q, %v", v, ok)
	}
	for _, pair := range [][2]string{{"usr/bin/su", "usr/bin/su2"}, {"usr/bin/ping", "usr/bin/ping2"}} {
		a, _ := os.Lstat(filepath.Join(dest, pair[0]))
		b, _ := os.Lstat(filepath.Join(dest, pair[1]))
		if !os.SameFile(a, b) {
			t.Errorf("%s and %s are not the same inode", pair[0], pair[1])
		}
	}
	// Regular files are the store's objects themselves.
	keys, err := s.Objects(d)
	if err != nil || len(keys) != 6 {
		t.Fatalf("Objects = %d keys, %v; want 6", len(keys), err)
	}
	su, _ := os.Lstat(filepath.Join(dest, "usr/bin/su"))
	found := false
	for _, k := range keys {
		p, _ := s.ObjectPath(k)
		if o, err := os.Lstat(p); err == nil && os.SameFile(o, su) {
			found = true
		}
	}
	if !found {
		t.Errorf("usr/bin/su is not hardlinked to an object")
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(ents) != 0 {
		t.Errorf("tmp not empty after import: %v", ents)
	}
}

func TestDedup(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, filepath.Join(root, "store"))
	shared := tent{name: "usr/lib/libshared.so", mode: 0o755, body: "shared library"}
	l1, st1 := mustImport(t, s, layerTar(t, shared, file("etc/a", "image A")))
	// A different layer of another image with the same file at another path,
	// the same content under different metadata, and an in-layer duplicate.
	l2, st2 := mustImport(t, s, layerTar(t,
		tent{name: "opt/copy.so", mode: 0o755, body: "shared library"},
		tent{name: "usr/lib/libshared.so", mode: 0o755, body: "shared library"},
		tent{name: "other-mode.so", mode: 0o700, body: "shared library"},
		tent{name: "other-owner.so", mode: 0o755, uid: 1, body: "shared library"},
		tent{name: "other-xattr.so", mode: 0o755, body: "shared library", xattrs: map[string]string{"user.a": "1"}},
		file("etc/b", "image B"),
		file("etc/b2", "image B"),
	))
	if st1.NewObjects != 2 || st1.ReusedObjects != 0 {
		t.Errorf("layer 1 stats %+v", st1)
	}
	// copy.so and libshared.so reuse layer 1's object; etc/b2 reuses etc/b's.
	if st2.NewObjects != 4 || st2.ReusedObjects != 3 || st2.Files != 7 {
		t.Errorf("layer 2 stats %+v: want 4 new, 3 reused", st2)
	}
	a := filepath.Join(root, "a")
	b := filepath.Join(root, "b")
	mustCompose(t, s, a, l1)
	mustCompose(t, s, b, l2)
	same := func(p, q string) bool {
		x, err1 := os.Lstat(p)
		y, err2 := os.Lstat(q)
		return err1 == nil && err2 == nil && os.SameFile(x, y)
	}
	lib := filepath.Join(a, "usr/lib/libshared.so")
	if !same(lib, filepath.Join(b, "usr/lib/libshared.so")) || !same(lib, filepath.Join(b, "opt/copy.so")) {
		t.Errorf("identical files across images are not one inode")
	}
	for _, n := range []string{"other-mode.so", "other-owner.so", "other-xattr.so"} {
		if same(lib, filepath.Join(b, n)) {
			t.Errorf("%s shares an inode with a file of different metadata", n)
		}
	}
	// object + a/usr/lib + b/usr/lib + b/opt/copy.so
	if n := lstat(t, lib).Nlink; n != 4 {
		t.Errorf("link count of shared object %d, want 4", n)
	}
}

func TestLayering(t *testing.T) {
	type layer []tent
	cases := []struct {
		name   string
		layers []layer
		want   map[string]string // path -> "file:content", "dir", "link:target"
		absent []string
	}{{
		name: "whiteout file and dir subtree",
		layers: []layer{
			{file("a/keep", "k"), file("a/gone", "g"), file("d/x/y", "y"), file("d2", "d2")},
			{file("a/.wh.gone", ""), file(".wh.d", ""), file(".wh.nothing-here", ""), file("x/.wh.missing-parent", "")},
		},
		want:   map[string]string{"a/keep": "file:k", "d2": "file:d2"},
		absent: []string{"a/gone", "d", "nothing-here", "x/missing-parent"},
	}, {
		name: "opaque dir keeps same-layer children, whatever the tar order",
		layers: []layer{
			{file("etc/old", "o"), file("etc/sub/deep", "d"), file("var/v", "v")},
			{file("etc/new", "n"), file("etc/.wh..wh..opq", ""), dir("etc/sub2/")},
		},
		want:   map[string]string{"etc/new": "file:n", "etc/sub2": "dir", "var/v": "file:v"},
		absent: []string{"etc/old", "etc/sub"},
	}, {
		name: "opaque root",
		layers: []layer{
			{file("a", "a"), file("b/c", "c")},
			{file(".wh..wh..opq", ""), file("z", "z")},
		},
		want:   map[string]string{"z": "file:z"},
		absent: []string{"a", "b"},
	}, {
		name: "whiteout and re-create in the same layer",
		layers: []layer{
			{file("f/child", "old")},
			{file("f", "now a file"), file(".wh.f", "")},
		},
		want:   map[string]string{"f": "file:now a file"},
		absent: []string{"f/child"},
	}, {
		name: "file replaced by dir and back",
		layers: []layer{
			{file("x", "file 1")},
			{dir("x/"), file("x/inner", "inner")},
			{file("x", "file 2")},
		},
		want:   map[string]string{"x": "file:file 2"},
		absent: []string{"x/inner"},
	}, {
		name: "dir replaced by symlink, symlink by dir",
		layers: []layer{
			{file("d/f", "f"), file("e/f", "f")},
			{symlink("d", "e")},
			{dir("d/"), file("d/g", "g")},
		},
		want: map[string]string{"e/f": "file:f", "d/g": "file:g", "d": "dir"},
	}, {
		name: "dir over dir merges and takes newer metadata",
		layers: []layer{
			{tent{name: "m/", typ: tar.TypeDir, mode: 0o700}, file("m/lower", "l")},
			{tent{name: "m/", typ: tar.TypeDir, mode: 0o750, gid: 10}, file("m/upper", "u")},
		},
		want: map[string]string{"m/lower": "file:l", "m/upper": "file:u", "m": "dir:750"},
	}, {
		name: "duplicate entries: last wins",
		layers: []layer{
			{file("dup", "first"), file("dup", "second"), symlink("l", "one"), symlink("l", "two"), file("dd/x", "x"), file("dd", "file now")},
		},
		want:   map[string]string{"dup": "file:second", "l": "link:two", "dd": "file:file now"},
		absent: []string{"dd/x"},
	}, {
		name: "hardlink to a file of a lower layer",
		layers: []layer{
			{file("bin/tool", "tool")},
			{hardlink("bin/alias", "bin/tool")},
		},
		want: map[string]string{"bin/alias": "file:tool"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			s := openStore(t, filepath.Join(root, "store"))
			var ds []digest.Digest
			for _, l := range c.layers {
				d, _ := mustImport(t, s, layerTar(t, l...))
				ds = append(ds, d)
			}
			dest := filepath.Join(root, "dest")
			mustCompose(t, s, dest, ds...)
			for p, w := range c.want {
				full := filepath.Join(dest, p)
				fi, err := os.Lstat(full)
				if err != nil {
					t.Errorf("%s: %v", p, err)
					continue
				}
				kind, arg, _ := strings.Cut(w, ":")
				switch kind {
				case "file":
					if !fi.Mode().IsRegular() || readFile(t, full) != arg {
						t.Errorf("%s: want file with %q", p, arg)
					}
				case "dir":
					if !fi.IsDir() {
						t.Errorf("%s: want a directory, have %v", p, fi.Mode())
					} else if arg != "" && (lstat(t, full).Mode&0o7777 != parseOctal(arg)) {
						t.Errorf("%s: mode %o, want %s", p, lstat(t, full).Mode&0o7777, arg)
					}
				case "link":
					if l, err := os.Readlink(full); err != nil || l != arg {
						t.Errorf("%s: want symlink to %q, have %q %v", p, arg, l, err)
					}
				}
			}
			for _, p := range c.absent {
				if exists(filepath.Join(dest, p)) {
					t.Errorf("%s exists, want it gone", p)
				}
			}
		})
	}
}

func parseOctal(s string) uint32 {
	var v uint32
	for _, c := range s {
		v = v*8 + uint32(c-'0')
	}
	return v
}

func TestDiffIDMismatch(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, filepath.Join(root, "store"))
	good, _ := mustImport(t, s, layerTar(t, file("shared", "shared content")))
	before := snapshot(t, s.Dir())

	data := layerTar(t, file("shared", "shared content"), file("new", "new content"))
	wrong := digest.FromString("something else")
	_, err := s.ImportLayer(context.Background(), bytes.NewReader(data), wrong)
	if !errors.Is(err, ErrDiffIDMismatch) {
		t.Fatalf("ImportLayer error %v, want ErrDiffIDMismatch", err)
	}
	if !strings.Contains(err.Error(), string(digest.FromBytes(data))) {
		t.Errorf("error does not name the actual digest: %v", err)
	}
	if ok, _ := s.HasLayer(wrong); ok {
		t.Errorf("mismatched layer recorded")
	}
	diffSnapshots(t, "store after mismatch", before, snapshot(t, s.Dir()))
	mustCompose(t, s, filepath.Join(root, "dest"), good)
}

func TestBadDiffID(t *testing.T) {
	s := openStore(t, t.TempDir())
	for _, d := range []digest.Digest{"", "sha256:abc", "sha512:" + digest.Digest(strings.Repeat("a", 128)), "sha256:../../etc"} {
		if _, err := s.ImportLayer(context.Background(), strings.NewReader(""), d); err == nil {
			t.Errorf("ImportLayer accepted diff ID %q", d)
		}
		if _, err := s.HasLayer(d); err == nil {
			t.Errorf("HasLayer accepted diff ID %q", d)
		}
	}
}

// failingReader returns an error after n bytes, like a dropped connection.
type failingReader struct {
	r io.Reader
	n int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= n
	return n, err
}

func bigLayer(t testing.TB, files int) []byte {
	var ents []tent
	for i := range files {
		ents = append(ents, file("data/f"+strconv.Itoa(i), strings.Repeat(strconv.Itoa(i), 1000)))
	}
	return layerTar(t, ents...)
}

func TestInterruptedImport(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, filepath.Join(root, "store"))
	data := bigLayer(t, 40)
	d := digest.FromBytes(data)
	_, err := s.ImportLayer(context.Background(), &failingReader{r: bytes.NewReader(data), n: len(data) / 2}, d)
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("ImportLayer error %v, want the reader's error", err)
	}
	if ok, _ := s.HasLayer(d); ok {
		t.Fatal("interrupted layer recorded as complete")
	}
	if keys, _ := os.ReadDir(filepath.Join(s.Dir(), "objects")); len(keys) != 0 {
		t.Errorf("objects published by an unverified stream: %v", keys)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.ImportLayer(ctx, bytes.NewReader(data), d); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled import error %v", err)
	}

	_, st := mustImport(t, s, data)
	if st.Files != 40 || st.NewObjects != 40 {
		t.Errorf("re-import stats %+v", st)
	}
	mustCompose(t, s, filepath.Join(root, "dest"), d)
	if got := readFile(t, filepath.Join(root, "dest/data/f39")); got != strings.Repeat("39", 1000) {
		t.Errorf("content after re-import wrong")
	}
}

// A crash after objects were published but before the index was written
// leaves complete objects without an index; importing again reuses them.
func TestReimportAfterLostIndex(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, filepath.Join(root, "store"))
	data := bigLayer(t, 10)
	d, _ := mustImport(t, s, data)
	if err := os.Remove(filepath.Join(s.Dir(), "layers", d.Encoded())); err != nil {
		t.Fatal(err)
	}
	_, st := mustImport(t, s, data)
	if st.NewObjects != 0 || st.ReusedObjects != 10 {
		t.Errorf("stats %+v, want all 10 objects reused", st)
	}
	if st, _ := s.ImportLayer(context.Background(), strings.NewReader("not read"), d); !st.Present {
		t.Errorf("import of a present layer did not report Present")
	}
	mustCompose(t, s, filepath.Join(root, "dest"), d)
}

// TestKilledImport kills a real importing process mid-stream, then checks
// that reopening the store cleans up and a fresh import succeeds.
func TestKilledImport(t *testing.T) {
	if os.Getenv("STORE_KILL_HELPER_DIR") != "" {
		// The re-executed helper process runs only TestKilledImportHelper: a plain skip.
		t.Skip("running as the helper")
	}
	root := t.TempDir()
	dir := filepath.Join(root, "store")
	openStore(t, dir)
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledImportHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "STORE_KILL_HELPER_DIR="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "HELPER-BLOCKED") {
		n, err := out.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			t.Fatalf("helper ended before blocking: %v\n%s", err, seen.String())
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) == 0 {
		t.Fatal("killed import left nothing in tmp; the test did not interrupt it")
	}
	s := openStore(t, dir)
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp not cleaned after reopen: %v", ents)
	}
	data := bigLayer(t, 40)
	d := digest.FromBytes(data)
	if ok, _ := s.HasLayer(d); ok {
		t.Fatal("killed import recorded as complete")
	}
	mustImport(t, s, data)
	mustCompose(t, s, filepath.Join(root, "dest"), d)
	if got := readFile(t, filepath.Join(root, "dest/data/f7")); got != strings.Repeat("7", 1000) {
		t.Errorf("content after re-import wrong")
	}
}

// blockingReader announces on stdout that the import is under way, then
// never returns, so the parent can kill the process mid-import.
type blockingReader struct{}

func (blockingReader) Read([]byte) (int, error) {
	os.Stdout.WriteString("HELPER-BLOCKED\n")
	select {}
}

func TestKilledImportHelper(t *testing.T) {
	dir := os.Getenv("STORE_KILL_HELPER_DIR")
	if dir == "" {
		// Not a test of its own but the process TestKilledImport starts and kills: a plain skip.
		t.Skip("helper for TestKilledImport")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bigLayer(t, 40)
	r := io.MultiReader(bytes.NewReader(data[:len(data)/2]), blockingReader{})
	s.ImportLayer(context.Background(), r, digest.FromBytes(data))
	t.Fatal("import returned although its reader blocks")
}

func TestComposeErrors(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, filepath.Join(root, "store"))
	d, _ := mustImport(t, s, layerTar(t, file("f", "x")))

	full := filepath.Join(root, "full")
	os.MkdirAll(filepath.Join(full, "something"), 0o755)
	if err := s.Compose(context.Background(), []digest.Digest{d}, full); !errors.Is(err, ErrDestNotEmpty) {
		t.Errorf("non-empty dest: %v", err)
	}
	missing := digest.FromString("never imported")
	if err := s.Compose(context.Background(), []digest.Digest{d, missing}, filepath.Join(root, "x")); !errors.Is(err, ErrLayerNotFound) {
		t.Errorf("missing layer: %v", err)
	}
	os.Symlink(filepath.Join(root, "elsewhere"), filepath.Join(root, "dest-link"))
	os.Mkdir(filepath.Join(root, "elsewhere"), 0o755)
	if err := s.Compose(context.Background(), []digest.Digest{d}, filepath.Join(root, "dest-link")); err == nil {
		t.Errorf("Compose followed a symlinked destination")
	}
	if exists(filepath.Join(root, "elsewhere", "f")) {
		t.Errorf("Compose wrote through a symlinked destination")
	}
}

func TestComposeCopiesAtLinkLimit(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, filepath.Join(root, "store"))
	d, _ := mustImport(t, s, layerTar(t,
		tent{name: "capped", mode: 0o4750, gid: 9, body: "many links", xattrs: map[string]string{"security.capability": string(capNetRawEP)}},
		file("normal", "n")))
	orig := linkat
	t.Cleanup(func() { linkat = orig })
	linkat = func(olddirfd int, oldpath string, newdirfd int, newpath string, flags int) error {
		if newpath == "capped" {
			return unix.EMLINK
		}
		return orig(olddirfd, oldpath, newdirfd, newpath, flags)
	}
	dest := filepath.Join(root, "dest")
	mustCompose(t, s, dest, d)
	p := filepath.Join(dest, "capped")
	st := lstat(t, p)
	if st.Nlink != 1 || st.Mode != unix.S_IFREG|0o4750 || st.Gid != 9 || st.Mtim.Sec != 0 {
		t.Errorf("copy: nlink %d mode %o gid %d mtime %d", st.Nlink, st.Mode, st.Gid, st.Mtim.Sec)
	}
	if readFile(t, p) != "many links" {
		t.Errorf("copy content wrong")
	}
	if v, ok := getxattr(t, p, "security.capability"); !ok || !bytes.Equal(v, capNetRawEP) {
		t.Errorf("copy lost security.capability")
	}
	if lstat(t, filepath.Join(dest, "normal")).Nlink != 2 {
		t.Errorf("other files should still be hardlinks")
	}
}

func TestGC(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, filepath.Join(root, "store"))
	base, _ := mustImport(t, s, layerTar(t, file("shared", "shared"), file("base-only", "base")))
	app, _ := mustImport(t, s, layerTar(t, file("shared", "shared"), file("app-only", "app"), file("app-deployed", "deployed")))
	old, _ := mustImport(t, s, layerTar(t, file("old-only", "old!")))

	// A deployment of app keeps its objects alive through hardlinks.
	dest := filepath.Join(root, "deploy")
	mustCompose(t, s, dest, app)
	os.Remove(filepath.Join(dest, "app-only")) // now only the store links it

	if _, err := s.GC([]digest.Digest{base, digest.FromString("typo")}); !errors.Is(err, ErrLayerNotFound) {
		t.Fatalf("GC with a missing keep layer: %v", err)
	}
	if layers, _ := s.Layers(); len(layers) != 3 {
		t.Fatalf("failed GC removed layers: %v", layers)
	}

	st, err := s.GC([]digest.Digest{base})
	if err != nil {
		t.Fatal(err)
	}
	// app and old go; app-only and old-only objects go; shared is kept by
	// base, app-deployed by the deployment.
	if st.LayersRemoved != 2 || st.ObjectsRemoved != 2 || st.ObjectsInUse != 1 {
		t.Errorf("GC stats %+v", st)
	}
	if st.BytesFreed < int64(len("app")+len("old!")) {
		t.Errorf("BytesFreed %d too small", st.BytesFreed)
	}
	if ok, _ := s.HasLayer(app); ok {
		t.Errorf("app layer survived GC")
	}
	if ok, _ := s.HasLayer(old); ok {
		t.Errorf("old layer survived GC")
	}
	if readFile(t, filepath.Join(dest, "app-deployed")) != "deployed" {
		t.Errorf("deployed file damaged")
	}
	// The kept layer still composes.
	mustCompose(t, s, filepath.Join(root, "again"), base)

	os.RemoveAll(dest)
	st, err = s.GC(nil)
	if err != nil {
		t.Fatal(err)
	}
	// base's two objects are linked by "again"; app-deployed is free now.
	if st.LayersRemoved != 1 || st.ObjectsRemoved != 1 || st.ObjectsInUse != 2 {
		t.Errorf("second GC stats %+v", st)
	}
	os.RemoveAll(filepath.Join(root, "again"))
	if _, err := s.GC(nil); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.Objects(); len(keys) != 0 {
		t.Errorf("objects referenced with no layers: %v", keys)
	}
	var left int
	filepath.WalkDir(filepath.Join(s.Dir(), "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left++
		}
		return nil
	})
	if left != 0 {
		t.Errorf("%d objects left after everything was released", left)
	}
	if err := s.Remove(base); !errors.Is(err, ErrLayerNotFound) {
		t.Errorf("Remove of a removed layer: %v", err)
	}
}

func TestCleanPath(t *testing.T) {
	cases := []struct {
		in, want string
		bad      bool
	}{
		{"a/b", "a/b", false},
		{"/abs/x", "abs/x", false},
		{"./a//b/./c/", "a/b/c", false},
		{"./", ".", false},
		{"/", ".", false},
		{"", ".", false},
		{"../escape", "", true},
		{"a/../../x", "", true},
		{"a/../b", "", true},
		{"a/..", "", true},
		{"a\x00b", "", true},
		{strings.Repeat("n", 256), "", true},
		{strings.Repeat("d/", 2048) + "f", "", true},
	}
	for _, c := range cases {
		got, err := cleanPath(c.in)
		if c.bad != (err != nil) || got != c.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q, bad=%v", c.in, got, err, c.want, c.bad)
		}
	}
}

func TestObjectKeyDistinguishesMetadata(t *testing.T) {
	var c [32]byte
	base := objectKey(c, 0o644, 0, 0, nil)
	variants := map[string]string{
		"mode":      objectKey(c, 0o4644, 0, 0, nil),
		"uid":       objectKey(c, 0o644, 1, 0, nil),
		"gid":       objectKey(c, 0o644, 0, 1, nil),
		"xattr":     objectKey(c, 0o644, 0, 0, map[string][]byte{"user.a": nil}),
		"xattr val": objectKey(c, 0o644, 0, 0, map[string][]byte{"user.a": []byte("b")}),
		"content":   objectKey([32]byte{1}, 0o644, 0, 0, nil),
	}
	seen := map[string]string{base: "base"}
	for name, k := range variants {
		if prev, ok := seen[k]; ok {
			t.Errorf("%s and %s share key %s", name, prev, k)
		}
		seen[k] = name
	}
	// Name/value boundaries are encoded, so moving bytes between them changes the key.
	a := objectKey(c, 0o644, 0, 0, map[string][]byte{"user.ab": []byte("c")})
	b := objectKey(c, 0o644, 0, 0, map[string][]byte{"user.a": []byte("bc")})
	if a == b {
		t.Errorf("xattr name/value boundary not encoded")
	}
	if objectKey(c, 0o644, 0, 0, map[string][]byte{"user.x": []byte("1"), "user.y": []byte("2")}) !=
		objectKey(c, 0o644, 0, 0, map[string][]byte{"user.y": []byte("2"), "user.x": []byte("1")}) {
		t.Errorf("key depends on map order")
	}
}

// Files above smallFile stream through a temp file instead of memory.
func TestLargeFiles(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, filepath.Join(root, "store"))
	big := strings.Repeat("0123456789abcdef", (3<<20)/16)
	l1, st1 := mustImport(t, s, layerTar(t, tent{name: "big", mode: 0o755, body: big}, file("edge", strings.Repeat("e", smallFile)), file("over", strings.Repeat("o", smallFile+1))))
	if st1.NewObjects != 3 || st1.NewBytes != int64(len(big)+2*smallFile+1) {
		t.Errorf("layer 1 stats %+v", st1)
	}
	l2, st2 := mustImport(t, s, layerTar(t,
		tent{name: "copy", mode: 0o755, body: big},
		tent{name: "other-mode", mode: 0o700, body: big},
		file("over2", strings.Repeat("o", smallFile+1))))
	if st2.NewObjects != 1 || st2.ReusedObjects != 2 {
		t.Errorf("layer 2 stats %+v: want 1 new, 2 reused", st2)
	}
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	mustCompose(t, s, a, l1)
	mustCompose(t, s, b, l2)
	if readFile(t, filepath.Join(b, "other-mode")) != big || readFile(t, filepath.Join(a, "big")) != big {
		t.Errorf("large content damaged")
	}
	x, _ := os.Lstat(filepath.Join(a, "big"))
	y, _ := os.Lstat(filepath.Join(b, "copy"))
	if !os.SameFile(x, y) {
		t.Errorf("identical large files are not one inode")
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(ents) != 0 {
		t.Errorf("tmp not empty: %v", ents)
	}
}
