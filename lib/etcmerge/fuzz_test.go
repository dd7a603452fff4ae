package etcmerge

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The fuzz trees are built from small pools so that the three trees often name the same paths:
// a merge only has something to decide where they meet. The paths include the sample image's
// /etc (images/files/etc) and nest three deep; the symlink targets point inside the tree, out of
// it (to a directory next to the trees that must stay untouched) and at the host's /etc.
var (
	fuzzPaths = []string{
		".", "a", "b", "a/x", "a/y", "a/x/z", "b/x",
		"hostname", "fstab", "containers", "containers/policy.json",
		"systemd/network", "systemd/network/20-wired.network", "bootc-sample/defaults.conf",
		"localtime", "resolv.conf",
	}
	fuzzContents = []string{"", "1", "2", "local\n"}
	fuzzTargets  = []string{
		"a", "x", "..", "a/x", "hostname", "/", "/etc/passwd",
		"../outside", "../outside/secret", "../../outside/secret", "../../../outside",
	}
	fuzzFileModes = []uint32{0o644, 0o600, 0o755, 0o640, 0o4755, 0o444, 0o2711, 0o400}
	fuzzDirModes  = []uint32{0o755, 0o700, 0o750, 0o555, 0o1777, 0o2755, 0o711, 0o500}
)

const fuzzKinds = "fdlph" // file, directory, symlink, fifo, hard link

// fuzzEnt is one encoded tree entry: kind, path, mode (bit 7: owned by 1000:1000) and data
// (content, symlink target or hard link source), each an index into its pool.
func fuzzEnt(kind byte, path string, mode byte, data int) []byte {
	i := strings.IndexByte(fuzzKinds, kind)
	for p, name := range fuzzPaths {
		if name == path {
			return []byte{byte(i), byte(p), mode, byte(data)}
		}
	}
	panic("fuzz seed path not in the pool: " + path)
}

func fuzzTree(ents ...[]byte) []byte { return slices.Concat(ents...) }

// decodeTree turns input bytes into entries build can create: an entry is dropped when its path
// is taken or lies below something that is not a directory, and a hard link needs an earlier
// regular file. Without root, owners stay root's and modes keep the owner's rwx, so the trees
// can still be built and read.
func decodeTree(data []byte, asRoot bool) []ent {
	kinds := map[string]byte{".": 'd'}
	var out []ent
	for ; len(data) >= 4; data = data[4:] {
		kind := fuzzKinds[int(data[0])%len(fuzzKinds)]
		path := fuzzPaths[int(data[1])%len(fuzzPaths)]
		mode, owned := data[2]&7, data[2]&0x80 != 0
		if path == "." {
			if kind != 'd' {
				continue
			}
		} else if _, taken := kinds[path]; taken || !parentsAreDirs(kinds, path) {
			continue
		}
		e := ent{path: path, kind: kind}
		switch kind {
		case 'f', 'p':
			e.perm = fuzzFileModes[mode]
			e.data = fuzzContents[int(data[3])%len(fuzzContents)]
		case 'd':
			e.perm = fuzzDirModes[mode]
		case 'l':
			e.data = fuzzTargets[int(data[3])%len(fuzzTargets)]
		case 'h':
			e.data = fuzzPaths[int(data[3])%len(fuzzPaths)]
			if kinds[e.data] != 'f' {
				continue
			}
		}
		if asRoot && owned && kind != 'h' {
			e.uid, e.gid = 1000, 1000
		}
		if !asRoot {
			if kind == 'd' {
				e.perm |= 0o700
			} else {
				e.perm |= 0o600
			}
		}
		for p := filepath.Dir(path); p != "."; p = filepath.Dir(p) {
			kinds[p] = 'd'
		}
		kinds[path] = kind
		if kind == 'h' {
			kinds[path] = 'f'
		}
		out = append(out, e)
	}
	return out
}

func parentsAreDirs(kinds map[string]byte, path string) bool {
	for p := filepath.Dir(path); p != "."; p = filepath.Dir(p) {
		if k, ok := kinds[p]; ok && k != 'd' {
			return false
		}
	}
	return true
}

// FuzzMerge builds the three /etc trees from the input in a temporary directory next to an
// "outside" directory that symlinks in the trees point at, merges them and checks the result
// against the rules of the package documentation:
//
//   - planning never fails on readable trees, and the plan names only paths inside the trees,
//     parents before children, each at most once;
//   - a plan with conflicts writes nothing; one without writes exactly the planned paths, each
//     a copy of its source entry (type, mode, owner, content or symlink target; never what a
//     symlink points at, never a special file);
//   - a locally modified or added file or symlink is in the result as it is in current;
//   - a path untouched locally (it and every parent as in pristine) is in the result as in the
//     new image, or absent with it (unless a local directory survives there);
//   - a path removed locally stays removed;
//   - nothing but the output changes: not the inputs, not the outside directory.
func FuzzMerge(f *testing.F) {
	file := func(p string, content int) []byte { return fuzzEnt('f', p, 0, content) }
	const one, two, local = 1, 2, 3
	etcFiles := [][]byte{
		file("hostname", one), file("fstab", one), file("containers/policy.json", one),
		file("systemd/network/20-wired.network", one), file("bootc-sample/defaults.conf", one),
	}
	for _, s := range [][3][]byte{
		// The sample image's /etc going from v1 to v2 (defaults.conf changes) on a machine
		// with its own hostname and resolv.conf.
		{fuzzTree(etcFiles...),
			fuzzTree(slices.Concat(etcFiles[1:], [][]byte{file("hostname", local), fuzzEnt('l', "resolv.conf", 0, 7)})...),
			fuzzTree(slices.Concat(etcFiles[:4], [][]byte{file("bootc-sample/defaults.conf", two)})...)},
		// The cases of TestMerge and TestConflicts, on the pool's names.
		{fuzzTree(file("a", one)), fuzzTree(file("a", one)), fuzzTree(file("a", two), file("b", local))},
		{fuzzTree(file("a", one), file("b", one)), fuzzTree(file("a", local), file("b", one)), fuzzTree(file("a", two), file("b", two))},
		{fuzzTree(file("a", one), file("b", one)), fuzzTree(file("b", one)), fuzzTree(file("a", two), file("b", one))},
		{fuzzTree(fuzzEnt('d', "a", 2, 0), file("a/x", one), file("a/y", one)),
			fuzzTree(fuzzEnt('d', "a", 2, 0), file("a/x", local), file("a/y", one)), nil},
		{fuzzTree(file("a/x", one)), nil, fuzzTree(file("a/x", one), file("a/y", two))},
		{fuzzTree(fuzzEnt('l', "localtime", 0, 0)), fuzzTree(fuzzEnt('l', "localtime", 0, 7)), fuzzTree(fuzzEnt('l', "localtime", 0, 1))},
		{fuzzTree(file("resolv.conf", one)), fuzzTree(fuzzEnt('l', "resolv.conf", 0, 6)), fuzzTree(file("resolv.conf", two))},
		{fuzzTree(file("a", one)), fuzzTree(file("a", one)), fuzzTree(file("a/x", one))},
		{fuzzTree(file("a/x", one)), fuzzTree(file("a/x", one)), fuzzTree(file("a", two))},
		{fuzzTree(file("a", one)), fuzzTree(file("a/x", one)), fuzzTree(file("a", one))},
		{fuzzTree(file("a", one)), fuzzTree(file("a", local)), fuzzTree(file("a/x", one))},
		{fuzzTree(file("a/x", one)), fuzzTree(file("a", one)), fuzzTree(file("a/x", one))},
		{fuzzTree(file("a", one)), fuzzTree(fuzzEnt('p', "a", 0, 0), fuzzEnt('p', "b", 0, 0)), fuzzTree(file("a", two))},
		{fuzzTree(fuzzEnt('d', ".", 0, 0), file("a", one)), fuzzTree(fuzzEnt('d', ".", 2, 0), file("a", one)), fuzzTree(file("a", one))},
		{fuzzTree(fuzzEnt('f', "b", 1, one)), fuzzTree(fuzzEnt('f', "b", 0x80|4, one)), fuzzTree(fuzzEnt('f', "b", 0, two))},
		{fuzzTree(file("a", one)), fuzzTree(file("a", one), file("b/x", local), fuzzEnt('h', "b", 0, 6)),
			fuzzTree(file("a", one), file("hostname", one), fuzzEnt('h', "fstab", 0, 7))},
		{nil, fuzzTree(fuzzEnt('l', "a", 0, 10), fuzzEnt('l', "b", 0, 2)), fuzzTree(fuzzEnt('d', "a", 0, 0), file("a/x", one))},
	} {
		f.Add(s[0], s[1], s[2])
	}
	asRoot := os.Geteuid() == 0
	f.Fuzz(func(t *testing.T, pristine, current, next []byte) {
		base := t.TempDir()
		tr := trees{
			pristine: filepath.Join(base, "pristine"),
			current:  filepath.Join(base, "current"),
			next:     filepath.Join(base, "new"),
			out:      filepath.Join(base, "out"),
		}
		build(t, filepath.Join(base, "outside"), []ent{{path: "secret", kind: 'f', data: "outside"}, {path: "d", kind: 'd'}})
		build(t, tr.pristine, decodeTree(pristine, asRoot))
		build(t, tr.current, decodeTree(current, asRoot))
		build(t, tr.next, decodeTree(next, asRoot))
		before := scan(t, base)

		plan, err := Plan(tr.pristine, tr.current, tr.next)
		if err != nil {
			t.Fatalf("planning: %v", err)
		}
		checkPlan(t, plan)
		err = Apply(plan, tr.out)
		if len(plan.Conflicts) > 0 {
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("a plan with conflicts %v applied: %v", plan.Conflicts, err)
			}
			if _, err := os.Lstat(tr.out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused merge left an output: %v", err)
			}
		} else {
			if err != nil {
				t.Fatalf("applying: %v", err)
			}
			checkResult(t, plan, tr)
		}

		after := scan(t, base)
		delete(after, "out")
		for p := range after {
			if strings.HasPrefix(p, "out/") {
				delete(after, p)
			}
		}
		if got, want := fmt.Sprint(after), fmt.Sprint(before); got != want {
			t.Errorf("the merge changed something besides its output:\nbefore %v\nafter  %v", want, got)
		}
	})
}

func checkPlan(t *testing.T, plan *MergePlan) {
	t.Helper()
	written := map[string]Type{}
	for _, a := range plan.Actions {
		if a.Path != "." && !filepath.IsLocal(a.Path) {
			t.Fatalf("action %+v leaves the tree", a)
		}
		if a.From == FromNone {
			continue
		}
		if _, dup := written[a.Path]; dup {
			t.Errorf("%s is written twice", a.Path)
		}
		if a.Path != "." {
			if parent, ok := written[filepath.Dir(a.Path)]; !ok || parent != TypeDir {
				t.Errorf("%s is written before a directory to hold it", a.Path)
			}
		}
		if a.Type == TypeSpecial {
			t.Errorf("%s: a special file is copied", a.Path)
		}
		written[a.Path] = a.Type
	}
	for _, c := range plan.Conflicts {
		if c.Path != "." && !filepath.IsLocal(c.Path) || strings.ContainsAny(c.Reason, "\n\r") {
			t.Errorf("conflict %q is outside the tree or spans lines", c)
		}
	}
	for _, w := range plan.Warnings {
		if strings.ContainsAny(w, "\n\r") {
			t.Errorf("warning %q spans lines", w)
		}
	}
}

func checkResult(t *testing.T, plan *MergePlan, tr trees) {
	t.Helper()
	p, c, n, o := scan(t, tr.pristine), scan(t, tr.current), scan(t, tr.next), scan(t, tr.out)
	src := map[Source]map[string]node{FromCurrent: c, FromNew: n}
	planned := map[string]bool{}
	for _, a := range plan.Actions {
		if a.From == FromNone {
			continue
		}
		planned[a.Path] = true
		if got, want := o[a.Path], src[a.From][a.Path]; got != want {
			t.Errorf("%s from %s: output %v, source %v", a.Path, a.From, got, want)
		}
	}
	for q, e := range o {
		if !planned[q] {
			t.Errorf("%s (%v) is in the output but not in the plan", q, e)
		}
	}

	union := map[string]bool{}
	for _, m := range []map[string]node{p, c, n} {
		for q := range m {
			union[q] = true
		}
	}
	for q := range union {
		pq, pok := p[q]
		cq, cok := c[q]
		nq, nok := n[q]
		oq, ook := o[q]
		if cok && cq.typ != TypeDir && cq.typ != TypeSpecial && (!pok || pq != cq) {
			if !ook || oq != cq {
				t.Errorf("%s was changed locally to %v, but the output has %v", q, cq, oq)
			}
		}
		if pok && !cok && ook {
			t.Errorf("%s was removed locally, but the output has %v", q, oq)
		}
		if untouched(p, c, q) {
			switch {
			case nok && nq.typ != TypeSpecial:
				if oq != nq {
					t.Errorf("%s is untouched locally; the new image has %v, the output %v", q, nq, oq)
				}
			case nok || !cok || cq.typ != TypeDir:
				if ook {
					t.Errorf("%s is untouched locally and not in the new image, but the output has %v", q, oq)
				}
			}
		}
	}
}

// untouched reports whether q and every directory above it are in current as in pristine.
func untouched(p, c map[string]node, q string) bool {
	for {
		pq, pok := p[q]
		cq, cok := c[q]
		if pok != cok || pq != cq {
			return false
		}
		if q == "." {
			return true
		}
		q = filepath.Dir(q)
	}
}

// node is what the merge must carry over of one entry; directories compare by their own
// metadata only. Timestamps are left out: the merge keeps them, but it does not decide by them.
type node struct {
	typ      Type
	perm     uint32
	uid, gid uint32
	data     string // content or symlink target
}

// scan lists a tree by lstat, following no symlink; keys are paths relative to root.
func scan(t *testing.T, root string) map[string]node {
	t.Helper()
	out := map[string]node{}
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entryOf(&st)
		nd := node{typ: e.typ, perm: e.perm, uid: e.uid, gid: e.gid}
		switch e.typ {
		case TypeRegular:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			nd.data = string(b)
		case TypeSymlink:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			nd.data, nd.perm = target, 0
		case TypeSpecial:
			nd.data = e.describe()
		}
		out[rel] = nd
		return nil
	})
	if err != nil {
		t.Fatalf("scanning %s: %v", root, err)
	}
	return out
}
