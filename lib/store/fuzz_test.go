package store

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"gobootc.dev/lib/fuzztest"
)

// FuzzImportCompose feeds two arbitrary byte strings as consecutive layers and
// composes whatever imported. Errors are fine; a panic, a multi-line error, a
// leftover temp file or any change outside the store and destination is not.
func FuzzImportCompose(f *testing.F) {
	empty := layerTar(f)
	for _, c := range hostileCases() {
		var seeds [][]byte
		for _, l := range c.layers {
			seeds = append(seeds, layerTar(f, l...))
		}
		if len(seeds) == 1 {
			seeds = append(seeds, empty)
		}
		f.Add(seeds[0], seeds[1])
	}
	f.Add(layerTar(f,
		dir("usr/"), tent{name: "usr/bin/su", mode: 0o4755, body: "su"},
		tent{name: "usr/bin/ping", body: "p", xattrs: map[string]string{"security.capability": string(capNetRawEP)}},
		symlink("bin", "usr/bin"), hardlink("usr/bin/su2", "usr/bin/su"), file("etc/.wh..wh..opq", "")),
		layerTar(f, file(".wh.bin", ""), dir("bin/"), file("bin/x", "x"), tent{name: "dev/null", typ: tar.TypeChar}))
	f.Add(paxSparseTar(f), empty)
	f.Add([]byte("not a tar at all"), []byte{})

	f.Fuzz(func(t *testing.T, a, b []byte) {
		root, storeDir, dest, _ := newSandbox(t)
		s, err := Open(storeDir)
		if err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, root, "store", "dest")
		etc := hostEtc(t)
		ctx := context.Background()

		oneLine := func(err error) {
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err.Error())
			}
		}
		var ds []digest.Digest
		for _, data := range [][]byte{a, b} {
			d := digest.FromBytes(data)
			_, err := s.ImportLayer(ctx, bytes.NewReader(data), d)
			oneLine(err)
			if err != nil {
				break
			}
			ds = append(ds, d)
		}
		oneLine(s.Compose(ctx, ds, dest))

		if ents, _ := os.ReadDir(filepath.Join(storeDir, "tmp")); len(ents) != 0 {
			t.Errorf("tmp not cleaned: %v", ents)
		}
		diffSnapshots(t, "outside store and dest", before, snapshot(t, root, "store", "dest"))
		if got := hostEtc(t); got != etc {
			t.Errorf("host /etc changed")
		}
	})
}

// Pools for FuzzComposeLayers: names that nest and collide across layers, symlink targets
// that point inside, at the sentinel next to the store and at the host's /etc, and the modes
// and bodies a layer's members take.
var (
	composeNames   = []string{".", "a", "b", "a/x", "a/y", "a/x/z", "b/x", "usr", "usr/bin", "usr/bin/su", "etc", "etc/passwd"}
	composeTargets = []string{"a", "x", "usr/bin", "../sentinel", sentinelMark, sentinelMark + "/keep", "/etc", "../../..", "/"}
	composeModes   = []int64{0o644, 0o755, 0o4755, 0o600, 0o2755, 0o444, 0o700, 0o1777}
	composeBodies  = []string{"", "1", "2", "su"}
)

// The kinds of member FuzzComposeLayers writes: file, directory, symlink, hard link,
// whiteout, opaque whiteout, fifo.
const composeKinds = "fdlhwop"

// composeLayer decodes four bytes per member: kind, name, mode (bit 7: owned by 1000:1000)
// and data (body, symlink target or hard link target), each an index into its pool.
func composeLayer(data []byte, sentinel string) []tent {
	var out []tent
	for ; len(data) >= 4; data = data[4:] {
		kind := composeKinds[int(data[0])%len(composeKinds)]
		name := composeNames[int(data[1])%len(composeNames)]
		e := tent{name: name, mode: composeModes[data[2]&7]}
		if data[2]&0x80 != 0 {
			e.uid, e.gid = 1000, 1000
		}
		switch kind {
		case 'f':
			e.body = composeBodies[int(data[3])%len(composeBodies)]
		case 'd':
			e.typ = tar.TypeDir
		case 'l':
			e.typ = tar.TypeSymlink
			e.link = strings.ReplaceAll(composeTargets[int(data[3])%len(composeTargets)], sentinelMark, sentinel)
		case 'h':
			e.typ = tar.TypeLink
			e.link = composeNames[int(data[3])%len(composeNames)]
		case 'w':
			dir, base := path.Split(name)
			e = file(dir+whiteoutPrefix+base, "")
		case 'o':
			e = file(path.Join(name, whiteoutOpaque), "")
		case 'p':
			e.typ = tar.TypeFifo
		}
		out = append(out, e)
	}
	return out
}

// FuzzComposeLayers composes three layers whose members come from small pools, so that they
// replace, white out, hard link and symlink over each other, and checks the tree against a
// model of the layer rules written independently of the store's: whiteouts of a layer hide
// only lower content, a later member replaces an earlier one, a directory over a directory
// merges, and a path through a symlink is refused rather than followed. Whenever the layers
// import, Compose must succeed exactly when the model does and then build exactly the
// model's tree; and nothing outside the store and the destination may change.
func FuzzComposeLayers(f *testing.F) {
	ent := func(kind byte, name string, mode byte, data int) []byte {
		return []byte{byte(strings.IndexByte(composeKinds, kind)), byte(slices.Index(composeNames, name)), mode, byte(data)}
	}
	for _, s := range [][3][]byte{
		// A base layer, an update that replaces, removes and links, and a third that
		// resets a directory.
		{slices.Concat(ent('d', "usr", 1, 0), ent('f', "usr/bin/su", 2, 3), ent('l', "b", 0, 2), ent('f', "etc/passwd", 0, 1)),
			slices.Concat(ent('w', "etc/passwd", 0, 0), ent('f', "etc/passwd", 3, 2), ent('h', "a", 0, 9)),
			slices.Concat(ent('o', "usr", 0, 0), ent('f', "usr/bin/su", 2, 1))},
		// The hostile cases: writing through symlinks to the sentinel, /etc and up.
		{ent('l', "a", 0, 3), ent('f', "a/x", 0, 1), nil},
		{ent('l', "etc", 0, 6), ent('f', "etc/passwd", 0, 1), nil},
		{ent('l', "a", 0, 4), ent('w', "a/x", 0, 0), ent('o', "a/x", 0, 0)},
		{ent('l', "a", 0, 7), ent('d', "a", 0, 0), ent('f', "a/x", 0, 1)},
		{ent('l', "a", 0, 5), ent('h', "b", 0, 1), nil},
		{slices.Concat(ent('d', "a", 0, 0), ent('h', "b", 0, 1)), nil, nil},
		{slices.Concat(ent('f', "a", 0, 1), ent('f', "a/x", 0, 1)), nil, nil},
		{slices.Concat(ent('f', "a", 0, 1), ent('f', "a", 0x82, 2)), ent('p', "b", 0, 0), ent('d', ".", 6, 0)},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, l1, l2, l3 []byte) {
		root, storeDir, dest, sentinel := newSandbox(t)
		s, err := Open(storeDir)
		if err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, root, "store", "dest")
		etc := hostEtc(t)
		ctx := context.Background()

		model := newComposeModel()
		var ds []digest.Digest
		var modelErr error
		for _, l := range [][]byte{l1, l2, l3} {
			ents := composeLayer(l, sentinel)
			data := layerTar(t, ents...)
			d := digest.FromBytes(data)
			if _, err := s.ImportLayer(ctx, bytes.NewReader(data), d); err != nil {
				fuzztest.OneLine(t, err)
				diffSnapshots(t, "outside store and dest", before, snapshot(t, root, "store", "dest"))
				return
			}
			ds = append(ds, d)
			if modelErr == nil {
				modelErr = model.apply(ents)
			}
		}
		err = s.Compose(ctx, ds, dest)
		fuzztest.OneLine(t, err)
		switch {
		case err != nil && modelErr == nil:
			t.Errorf("Compose failed where the model composes: %v", err)
		case err == nil && modelErr != nil:
			t.Errorf("Compose succeeded where the model refuses: %v", modelErr)
		case err == nil:
			got := composeScan(t, dest)
			if g, w := fmt.Sprint(got), fmt.Sprint(model.nodes); g != w {
				t.Errorf("composed tree differs from the model:\ngot  %v\nwant %v", g, w)
			}
		}
		diffSnapshots(t, "outside store and dest", before, snapshot(t, root, "store", "dest"))
		if got := hostEtc(t); got != etc {
			t.Errorf("host /etc changed")
		}
	})
}

// mnode is what the model knows of one entry of the composed tree.
type mnode struct {
	typ      byte // 'f', 'd' or 'l'
	mode     int64
	uid, gid int
	data     string // body or symlink target
}

func (n mnode) String() string {
	return fmt.Sprintf("%c%o:%d:%d:%q", n.typ, n.mode, n.uid, n.gid, n.data)
}

// composeModel is the layer rules over a map of cleaned paths.
type composeModel struct{ nodes map[string]mnode }

func newComposeModel() *composeModel {
	return &composeModel{nodes: map[string]mnode{".": {typ: 'd', mode: 0o755}}}
}

var errModelMissing = errors.New("missing parent")

// parents checks the directories above p, creating missing ones when create is set.
func (m *composeModel) parents(p string, create bool) error {
	if p == "." {
		return nil
	}
	comps := strings.Split(p, "/")
	for i := 1; i < len(comps); i++ {
		pre := strings.Join(comps[:i], "/")
		n, ok := m.nodes[pre]
		switch {
		case !ok && !create:
			return errModelMissing
		case !ok:
			m.nodes[pre] = mnode{typ: 'd', mode: 0o755}
		case n.typ == 'l':
			return fmt.Errorf("%s: parent %s is a symlink", p, pre)
		case n.typ != 'd':
			return fmt.Errorf("%s: parent %s is not a directory", p, pre)
		}
	}
	return nil
}

// clear removes everything below p, and p itself when self is set.
func (m *composeModel) clear(p string, self bool) {
	for q := range m.nodes {
		if (self && q == p) || (q != "." && (p == "." || strings.HasPrefix(q, p+"/"))) {
			delete(m.nodes, q)
		}
	}
}

func (m *composeModel) apply(ents []tent) error {
	// A layer's whiteouts hide lower content only, so they go first.
	for _, e := range ents {
		dir, base := path.Split(e.name)
		dir = path.Clean("./" + dir)
		switch {
		case base == whiteoutOpaque:
			if err := m.parents(dir, false); err == errModelMissing {
				continue
			} else if err != nil {
				return err
			}
			if m.nodes[dir].typ == 'd' {
				m.clear(dir, false)
			}
		case strings.HasPrefix(base, whiteoutPrefix):
			victim := path.Join(dir, strings.TrimPrefix(base, whiteoutPrefix))
			if err := m.parents(victim, false); err == errModelMissing {
				continue
			} else if err != nil {
				return err
			}
			m.clear(victim, true)
		}
	}
	for _, e := range ents {
		if strings.HasPrefix(path.Base(e.name), whiteoutPrefix) || e.typ == tar.TypeFifo {
			continue
		}
		if err := m.parents(e.name, true); err != nil {
			return err
		}
		n := mnode{typ: 'f', mode: e.mode, uid: e.uid, gid: e.gid, data: e.body}
		switch e.typ {
		case tar.TypeDir:
			n.typ, n.data = 'd', ""
			if old, ok := m.nodes[e.name]; ok && old.typ == 'd' {
				m.nodes[e.name] = n // a directory over a directory keeps its children
				continue
			}
		case tar.TypeSymlink:
			n.typ, n.mode, n.uid, n.gid, n.data = 'l', 0, e.uid, e.gid, e.link
		case tar.TypeLink:
			if err := m.parents(e.link, false); err != nil {
				return fmt.Errorf("%s: hard link target %s: %v", e.name, e.link, err)
			}
			target, ok := m.nodes[e.link]
			if !ok || target.typ != 'f' {
				return fmt.Errorf("%s: hard link target %s is not a file", e.name, e.link)
			}
			n = target
		}
		m.clear(e.name, true)
		m.nodes[e.name] = n
	}
	return nil
}

// composeScan lists dest in the model's terms.
func composeScan(t *testing.T, dest string) map[string]mnode {
	t.Helper()
	out := map[string]mnode{}
	err := filepath.WalkDir(dest, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dest, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		n := mnode{mode: int64(st.Mode & 0o7777), uid: int(st.Uid), gid: int(st.Gid)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			n.typ = 'f'
			n.data = readFile(t, p)
		case unix.S_IFDIR:
			n.typ = 'd'
		case unix.S_IFLNK:
			n.typ, n.mode = 'l', 0
			n.data, err = os.Readlink(p)
		default:
			return fmt.Errorf("%s: unexpected file type %o", rel, st.Mode&unix.S_IFMT)
		}
		out[rel] = n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
