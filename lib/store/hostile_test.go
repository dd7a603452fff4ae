package store

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// sentinelMark in a name or link target is replaced by the absolute path of
// the sentinel directory that sits next to the store and the destination.
const sentinelMark = "@SENTINEL@"

type outcome int

const (
	composes     outcome = iota // import and compose succeed
	importFails                 // some layer's import fails
	composeFails                // every import succeeds, compose fails
)

type hostileCase struct {
	name    string
	layers  [][]tent
	outcome outcome
	// errIs, when set, must match the failure with errors.Is.
	errIs error
	// warn, when set, must appear among the import warnings.
	warn string
	// check inspects dest after a successful compose.
	check func(t *testing.T, dest string)
}

func hostileCases() []hostileCase {
	absent := func(paths ...string) func(*testing.T, string) {
		return func(t *testing.T, dest string) {
			for _, p := range paths {
				if exists(filepath.Join(dest, p)) {
					t.Errorf("%s was created", p)
				}
			}
		}
	}
	return []hostileCase{
		{name: "parent traversal", layers: [][]tent{{file("../escape", "x")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "traversal into sentinel", layers: [][]tent{{file("../sentinel/keep", "overwritten")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "traversal in the middle", layers: [][]tent{{file("a/../../x", "x")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "non-escaping dotdot", layers: [][]tent{{file("a/../b", "x")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "absolute path is relative to the root", layers: [][]tent{{file("/abs", "inside")}}, outcome: composes,
			check: func(t *testing.T, dest string) {
				if readFile(t, filepath.Join(dest, "abs")) != "inside" {
					t.Errorf("/abs not placed at dest/abs")
				}
			}},
		{name: "absolute path to the sentinel", layers: [][]tent{{file(sentinelMark+"/keep", "overwritten")}}, outcome: composes,
			check: func(t *testing.T, dest string) {
				// The sentinel path reappears inside dest, nowhere else.
				var found bool
				filepath.WalkDir(dest, func(p string, d os.DirEntry, err error) error {
					if err == nil && d.Name() == "keep" && !d.IsDir() {
						found = readFile(t, p) == "overwritten"
					}
					return nil
				})
				if !found {
					t.Errorf("absolute entry not placed inside dest")
				}
			}},
		{name: "symlink to /etc then write through it", layers: [][]tent{{symlink("a", "/etc"), file("a/passwd", "root::0:0::/:/bin/sh\n")}},
			outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "symlink to sentinel then write through it", layers: [][]tent{{symlink("a", sentinelMark), file("a/keep", "overwritten"), file("a/new", "new")}},
			outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "relative escaping symlink then write through it", layers: [][]tent{{symlink("a", "../../.."), file("a/x", "x")}},
			outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "symlink in a lower layer, write through it in an upper", layers: [][]tent{
			{symlink("a", "../sentinel")},
			{file("a/new", "new")},
		}, outcome: composeFails, errIs: ErrUnsafeEntry},
		{name: "dir through symlink", layers: [][]tent{{symlink("a", "../sentinel"), dir("a/sub/")}},
			outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "symlink replaced by a directory is safe", layers: [][]tent{{symlink("a", "../sentinel"), dir("a/"), file("a/x", "x")}},
			outcome: composes, check: func(t *testing.T, dest string) {
				if fi, err := os.Lstat(filepath.Join(dest, "a")); err != nil || !fi.IsDir() {
					t.Errorf("a is not a directory: %v", err)
				}
			}},
		{name: "escaping symlinks are only stored", layers: [][]tent{{symlink("up", "../../../../../../etc/shadow"), symlink("abs", sentinelMark+"/keep")}},
			outcome: composes, check: func(t *testing.T, dest string) {
				if l, _ := os.Readlink(filepath.Join(dest, "up")); l != "../../../../../../etc/shadow" {
					t.Errorf("up -> %q", l)
				}
			}},
		{name: "hardlink traversal", layers: [][]tent{{hardlink("h", "../../etc/shadow")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "hardlink to absolute host path stays inside", layers: [][]tent{{hardlink("h", "/etc/shadow")}}, outcome: composeFails},
		{name: "hardlink to a symlink", layers: [][]tent{{symlink("s", sentinelMark+"/keep"), hardlink("h", "s")}},
			outcome: composeFails, errIs: ErrUnsafeEntry},
		{name: "hardlink to a directory", layers: [][]tent{{dir("d/"), hardlink("h", "d")}}, outcome: composeFails, errIs: ErrUnsafeEntry},
		{name: "hardlink to the root", layers: [][]tent{{hardlink("h", "./")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "hardlink through a symlink", layers: [][]tent{{symlink("s", sentinelMark), hardlink("h", "s/keep")}},
			outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "hardlink to a later entry", layers: [][]tent{{hardlink("h", "f"), file("f", "f")}}, outcome: composeFails},
		{name: "char device", layers: [][]tent{{{name: "dev/mem", typ: tar.TypeChar}, file("ok", "ok")}},
			outcome: composes, warn: "character device", check: absent("dev/mem")},
		{name: "block device", layers: [][]tent{{{name: "dev/sda", typ: tar.TypeBlock}}},
			outcome: composes, warn: "block device", check: absent("dev/sda")},
		{name: "fifo", layers: [][]tent{{{name: "run/fifo", typ: tar.TypeFifo}}},
			outcome: composes, warn: "fifo", check: absent("run/fifo")},
		{name: "duplicate entries: last wins", layers: [][]tent{{file("dup", "one"), tent{name: "dup", mode: 0o4755, body: "two"}}},
			outcome: composes, check: func(t *testing.T, dest string) {
				if readFile(t, filepath.Join(dest, "dup")) != "two" || lstat(t, filepath.Join(dest, "dup")).Mode&0o7777 != 0o4755 {
					t.Errorf("the last duplicate did not win")
				}
			}},
		{name: "whiteout of dotdot", layers: [][]tent{{file(".wh...", "")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "whiteout of dot", layers: [][]tent{{file(".wh..", "")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "whiteout of nothing", layers: [][]tent{{file("a/.wh.", "")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "whiteout escaping", layers: [][]tent{{file("../.wh.sentinel", "")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "whiteout used as directory", layers: [][]tent{{file(".wh.x/y", "")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "whiteout through a symlink", layers: [][]tent{
			{symlink("a", sentinelMark)},
			{file("a/.wh.keep", "")},
		}, outcome: composeFails, errIs: ErrUnsafeEntry},
		{name: "opaque through a symlink", layers: [][]tent{
			{symlink("a", sentinelMark)},
			{file("a/b/.wh..wh..opq", "")},
		}, outcome: composeFails, errIs: ErrUnsafeEntry},
		{name: "aufs metadata directory refused", layers: [][]tent{{file(".wh..wh.plnk/1.2", "")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "aufs metadata file skipped", layers: [][]tent{{file(".wh..wh.aufs", "")}}, outcome: composes, warn: "reserved whiteout", check: absent(".wh..wh.aufs", "aufs")},
		{name: "root as a symlink", layers: [][]tent{{symlink("./", "/etc")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "root as a file", layers: [][]tent{{file(".", "x")}}, outcome: importFails, errIs: ErrUnsafeEntry},
		{name: "file used as a parent", layers: [][]tent{{file("f", "x"), file("f/y", "y")}}, outcome: composeFails},
		{name: "overlay xattrs dropped", layers: [][]tent{{
			tent{name: "d/", typ: tar.TypeDir, xattrs: map[string]string{"trusted.overlay.opaque": "y", "user.overlay.redirect": "/x", "user.ok": "1"}},
		}}, outcome: composes, warn: "trusted.overlay.opaque", check: func(t *testing.T, dest string) {
			p := filepath.Join(dest, "d")
			if _, ok := getxattr(t, p, "trusted.overlay.opaque"); ok {
				t.Errorf("trusted.overlay.opaque was set")
			}
			if _, ok := getxattr(t, p, "user.overlay.redirect"); ok {
				t.Errorf("user.overlay.redirect was set")
			}
			if _, ok := getxattr(t, p, "user.ok"); !ok {
				t.Errorf("user.ok was dropped")
			}
		}},
		{name: "malformed security.capability", layers: [][]tent{{tent{name: "f", body: "x", xattrs: map[string]string{"security.capability": "garbage"}}}},
			outcome: importFails},
		{name: "owner out of range", layers: [][]tent{{tent{name: "f", uid: 1 << 32, body: "x"}}}, outcome: importFails},
		{name: "setuid file at an absolute path stays inside", layers: [][]tent{{tent{name: "/usr/bin/evil", mode: 0o6755, body: "x"}}},
			outcome: composes, check: func(t *testing.T, dest string) {
				if lstat(t, filepath.Join(dest, "usr/bin/evil")).Mode&0o7777 != 0o6755 {
					t.Errorf("mode not kept")
				}
			}},
	}
}

func substituteSentinel(ents []tent, sentinel string) []tent {
	out := make([]tent, len(ents))
	for i, e := range ents {
		e.name = strings.ReplaceAll(e.name, sentinelMark, sentinel)
		e.link = strings.ReplaceAll(e.link, sentinelMark, sentinel)
		out[i] = e
	}
	return out
}

// hostEtc is a fingerprint of the host files the corpus aims at.
func hostEtc(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{"/etc/passwd", "/etc/shadow"} {
		st := snapshotFile(p)
		b.WriteString(p + " " + st + "\n")
	}
	return b.String()
}

func snapshotFile(p string) string {
	data, err := os.ReadFile(p)
	fi, serr := os.Lstat(p)
	if err != nil || serr != nil {
		return fmt.Sprintf("unreadable: %v %v", err, serr)
	}
	return fmt.Sprintf("%x %v %v", sha256.Sum256(data), fi.Mode(), fi.ModTime().UnixNano())
}

// newSandbox lays out root/{store,dest,sentinel/keep} and returns the paths.
func newSandbox(t testing.TB) (root, storeDir, dest, sentinel string) {
	t.Helper()
	root = t.TempDir()
	storeDir = filepath.Join(root, "store")
	dest = filepath.Join(root, "dest")
	sentinel = filepath.Join(root, "sentinel")
	for _, d := range []string{dest, filepath.Join(sentinel, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(sentinel, "keep"), []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, storeDir, dest, sentinel
}

func TestHostileLayers(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			root, storeDir, dest, sentinel := newSandbox(t)
			s := openStore(t, storeDir)
			before := snapshot(t, root, "store", "dest")
			etc := hostEtc(t)

			var ds []digest.Digest
			var warnings []string
			var failure error
			failedAt := composes
			for _, l := range c.layers {
				data := layerTar(t, substituteSentinel(l, sentinel)...)
				d := digest.FromBytes(data)
				st, err := s.ImportLayer(context.Background(), bytes.NewReader(data), d)
				warnings = append(warnings, st.Warnings...)
				if err != nil {
					failure, failedAt = err, importFails
					break
				}
				ds = append(ds, d)
			}
			if failure == nil {
				if err := s.Compose(context.Background(), ds, dest); err != nil {
					failure, failedAt = err, composeFails
				}
			}

			if failedAt != c.outcome {
				t.Fatalf("outcome %v (error: %v), want %v", failedAt, failure, c.outcome)
			}
			if failure != nil {
				msg := failure.Error()
				if strings.Contains(msg, "\n") {
					t.Errorf("error spans several lines: %q", msg)
				}
				if !strings.Contains(msg, "layer sha256:") || !strings.Contains(msg, "entry \"") {
					t.Errorf("error does not name the layer and entry: %s", msg)
				}
				if c.errIs != nil && !errors.Is(failure, c.errIs) {
					t.Errorf("error %v, want %v", failure, c.errIs)
				}
				t.Logf("refused: %v", failure)
			}
			if c.warn != "" && !strings.Contains(strings.Join(warnings, "\n"), c.warn) {
				t.Errorf("warnings %q lack %q", warnings, c.warn)
			}
			if c.check != nil {
				c.check(t, dest)
			}
			diffSnapshots(t, "outside store and dest", before, snapshot(t, root, "store", "dest"))
			if got := hostEtc(t); got != etc {
				t.Errorf("host /etc changed:\n%s\n%s", etc, got)
			}
		})
	}
}

func (o outcome) String() string {
	return [...]string{"composes", "import fails", "compose fails"}[o]
}

// paxSparseTar builds a PAX 0.1 sparse member by hand (archive/tar cannot
// write one): 5 bytes of data that expand to 1 TiB when read back.
func paxSparseTar(t testing.TB) []byte {
	t.Helper()
	records := ""
	for _, kv := range [][2]string{{"GNU.sparse.map", "0,5"}, {"GNU.sparse.numblocks", "1"}, {"GNU.sparse.size", "1099511627776"}} {
		rec := " " + kv[0] + "=" + kv[1] + "\n"
		n := len(rec) + 2
		if len(fmt.Sprint(n)+rec) != n {
			n++
		}
		records += fmt.Sprint(n) + rec
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// Write the extended header as a plain file, then retype its block.
	if err := tw.WriteHeader(&tar.Header{Name: "PaxHeaders/bomb", Typeflag: tar.TypeReg, Size: int64(len(records)), Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(records))
	tw.Flush()
	hdrBlock := buf.Bytes()[:512]
	hdrBlock[156] = tar.TypeXHeader
	for i := 148; i < 156; i++ {
		hdrBlock[i] = ' '
	}
	var sum int
	for _, b := range hdrBlock {
		sum += int(b)
	}
	copy(hdrBlock[148:], fmt.Sprintf("%06o\x00 ", sum))
	if err := tw.WriteHeader(&tar.Header{Name: "bomb", Typeflag: tar.TypeReg, Size: 5, Mode: 0o644, Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("12345"))
	tw.Close()
	return buf.Bytes()
}

func TestSparseRefused(t *testing.T) {
	data := paxSparseTar(t)
	hdr, err := tar.NewReader(bytes.NewReader(data)).Next()
	if err != nil || hdr.Name != "bomb" {
		t.Fatalf("hand-made sparse tar does not parse: %v %v", hdr, err)
	}
	s := openStore(t, t.TempDir())
	_, err = s.ImportLayer(context.Background(), bytes.NewReader(data), digest.FromBytes(data))
	if err == nil || !strings.Contains(err.Error(), "sparse") {
		t.Fatalf("sparse member accepted: %v", err)
	}
}
