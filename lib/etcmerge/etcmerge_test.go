package etcmerge

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/envtest"
)

// ent describes one entry of a test tree; parents are created 0755 root:root on demand.
type ent struct {
	path   string
	kind   byte   // 'f' file, 'd' directory, 'l' symlink, 'p' fifo, 'h' hardlink to data
	data   string // content, symlink target or hardlink target
	perm   uint32 // 0 means 0644 for files, 0755 for directories
	uid    int
	gid    int
	xattrs map[string]string
}

func f(path, data string) ent   { return ent{path: path, kind: 'f', data: data} }
func d(path string) ent         { return ent{path: path, kind: 'd'} }
func l(path, target string) ent { return ent{path: path, kind: 'l', data: target} }
func fifo(path string) ent      { return ent{path: path, kind: 'p'} }
func hard(path, to string) ent  { return ent{path: path, kind: 'h', data: to} }

func (e ent) mode(m uint32) ent { e.perm = m; return e }
func (e ent) owner(uid, gid int) ent {
	e.uid, e.gid = uid, gid
	return e
}
func (e ent) xattr(k, v string) ent {
	m := map[string]string{}
	for k0, v0 := range e.xattrs {
		m[k0] = v0
	}
	m[k] = v
	e.xattrs = m
	return e
}

func build(t testing.TB, root string, ents []ent) {
	t.Helper()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(root, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		perm := e.perm
		var err error
		switch e.kind {
		case 'f':
			if perm == 0 {
				perm = 0o644
			}
			err = os.WriteFile(p, []byte(e.data), 0o600)
		case 'd':
			if perm == 0 {
				perm = 0o755
			}
			if e.path != "." {
				err = os.Mkdir(p, 0o700)
			}
		case 'l':
			err = os.Symlink(e.data, p)
		case 'p':
			if perm == 0 {
				perm = 0o644
			}
			err = unix.Mkfifo(p, 0o600)
		case 'h':
			err = os.Link(filepath.Join(root, e.data), p)
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.kind == 'h' {
			continue
		}
		if e.uid != 0 || e.gid != 0 {
			if err := os.Lchown(p, e.uid, e.gid); err != nil {
				t.Fatal(err)
			}
		}
		if e.kind != 'l' {
			if err := unix.Chmod(p, perm); err != nil {
				t.Fatal(err)
			}
		}
		for k, v := range e.xattrs {
			if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
				if err == unix.ENOTSUP {
					// ext4 has them; tmpfs only since Linux 6.6.
					envtest.Missing(t, "user xattrs on %s's filesystem (set TMPDIR to a directory on ext4)", root)
				}
				t.Fatalf("setting %s on %s: %v", k, p, err)
			}
		}
	}
}

// describe renders a tree as sorted lines holding everything the merge must preserve.
func describe(t testing.TB, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s %o %d:%d", rel, st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %q", b)
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		}
		xs, err := pathXattrs(p)
		if err != nil {
			return err
		}
		sort.Slice(xs, func(i, j int) bool { return xs[i].name < xs[j].name })
		for _, x := range xs {
			line += fmt.Sprintf(" %s=%q", x.name, x.value)
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

type trees struct {
	pristine, current, next, out string
}

func setup(t *testing.T, pristine, current, next []ent) trees {
	t.Helper()
	base := t.TempDir()
	tr := trees{
		pristine: filepath.Join(base, "pristine"),
		current:  filepath.Join(base, "current"),
		next:     filepath.Join(base, "new"),
		out:      filepath.Join(base, "out"),
	}
	build(t, tr.pristine, pristine)
	build(t, tr.current, current)
	build(t, tr.next, next)
	return tr
}

// requireRoot: the trees hold files of other owners.
func requireRoot(t *testing.T) {
	t.Helper()
	envtest.NeedRoot(t)
}

func TestMerge(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name                    string
		pristine, current, next []ent
		want                    []ent
		warnings                int
	}{
		{
			name:     "untouched file takes the new image's version",
			pristine: []ent{f("a.conf", "1")},
			current:  []ent{f("a.conf", "1")},
			next:     []ent{f("a.conf", "2"), f("new.conf", "n")},
			want:     []ent{f("a.conf", "2"), f("new.conf", "n")},
		},
		{
			name:     "locally modified file wins over the new default",
			pristine: []ent{f("a.conf", "1"), f("b.conf", "b")},
			current:  []ent{f("a.conf", "local"), f("b.conf", "b")},
			next:     []ent{f("a.conf", "2"), f("b.conf", "b2")},
			want:     []ent{f("a.conf", "local"), f("b.conf", "b2")},
		},
		{
			name:     "same size different bytes counts as modified",
			pristine: []ent{f("a.conf", "aaaa")},
			current:  []ent{f("a.conf", "aaab")},
			next:     []ent{f("a.conf", "aaaa")},
			want:     []ent{f("a.conf", "aaab")},
		},
		{
			name:     "locally added file is kept",
			pristine: []ent{f("a.conf", "1")},
			current:  []ent{f("a.conf", "1"), f("local.conf", "mine").mode(0o600)},
			next:     []ent{f("a.conf", "1")},
			want:     []ent{f("a.conf", "1"), f("local.conf", "mine").mode(0o600)},
		},
		{
			name:     "locally added file overwrites the same new default",
			pristine: []ent{},
			current:  []ent{f("x.conf", "mine")},
			next:     []ent{f("x.conf", "theirs")},
			want:     []ent{f("x.conf", "mine")},
		},
		{
			name:     "locally removed file stays removed even if the image changed it",
			pristine: []ent{f("a.conf", "1"), f("b.conf", "1")},
			current:  []ent{f("b.conf", "1")},
			next:     []ent{f("a.conf", "2"), f("b.conf", "1")},
			want:     []ent{f("b.conf", "1")},
		},
		{
			name:     "file dropped by the new image is dropped",
			pristine: []ent{f("a.conf", "1"), f("old.d/x", "x"), f("keep", "k")},
			current:  []ent{f("a.conf", "1"), f("old.d/x", "x"), f("keep", "k")},
			next:     []ent{f("keep", "k")},
			want:     []ent{f("keep", "k")},
		},
		{
			name:     "modified file survives in a directory the new image dropped",
			pristine: []ent{d("svc.d").mode(0o750), f("svc.d/a", "1"), f("svc.d/b", "1")},
			current:  []ent{d("svc.d").mode(0o750), f("svc.d/a", "local"), f("svc.d/b", "1")},
			next:     []ent{},
			want:     []ent{d("svc.d").mode(0o750), f("svc.d/a", "local")},
		},
		{
			name:     "locally removed directory is removed with what the image adds to it",
			pristine: []ent{f("foo.d/a", "1")},
			current:  []ent{},
			next:     []ent{f("foo.d/a", "1"), f("foo.d/b", "new")},
			want:     []ent{},
		},
		{
			name:     "locally added nested directories are kept and merged with new content",
			pristine: []ent{f("a", "1")},
			current:  []ent{f("a", "1"), d("my/deep/dir").mode(0o700), f("my/deep/dir/x", "x"), d("my/empty")},
			next:     []ent{f("a", "1"), f("my/from-image", "i")},
			want: []ent{f("a", "1"), d("my/deep/dir").mode(0o700), f("my/deep/dir/x", "x"), d("my/empty"),
				f("my/from-image", "i")},
		},
		{
			name:     "nested new directories from the image appear",
			pristine: []ent{f("a", "1")},
			current:  []ent{f("a", "1")},
			next:     []ent{f("a", "1"), d("x/y/z").mode(0o711), f("x/y/z/f", "f"), l("x/link", "y/z/f")},
			want:     []ent{f("a", "1"), d("x/y/z").mode(0o711), f("x/y/z/f", "f"), l("x/link", "y/z/f")},
		},
		{
			name:     "permission-only change wins",
			pristine: []ent{f("shadow", "s").mode(0o640)},
			current:  []ent{f("shadow", "s").mode(0o600)},
			next:     []ent{f("shadow", "s2").mode(0o640)},
			want:     []ent{f("shadow", "s").mode(0o600)},
		},
		{
			name:     "ownership-only change wins and keeps setuid",
			pristine: []ent{f("tool", "t").mode(0o4755)},
			current:  []ent{f("tool", "t").mode(0o4755).owner(1000, 1001)},
			next:     []ent{f("tool", "t2").mode(0o4755)},
			want:     []ent{f("tool", "t").mode(0o4755).owner(1000, 1001)},
		},
		{
			name:     "directory metadata change wins and new children still arrive",
			pristine: []ent{d("ssl").mode(0o755), f("ssl/a", "a")},
			current:  []ent{d("ssl").mode(0o700).owner(0, 1000), f("ssl/a", "a")},
			next:     []ent{d("ssl").mode(0o755), f("ssl/a", "a2"), f("ssl/b", "b")},
			want:     []ent{d("ssl").mode(0o700).owner(0, 1000), f("ssl/a", "a2"), f("ssl/b", "b")},
		},
		{
			name:     "symlink retarget wins",
			pristine: []ent{l("localtime", "/usr/share/zoneinfo/UTC"), l("other", "x")},
			current:  []ent{l("localtime", "/usr/share/zoneinfo/Europe/Paris"), l("other", "x")},
			next:     []ent{l("localtime", "/usr/share/zoneinfo/Etc/UTC"), l("other", "y")},
			want:     []ent{l("localtime", "/usr/share/zoneinfo/Europe/Paris"), l("other", "y")},
		},
		{
			name:     "symlink ownership change wins",
			pristine: []ent{l("s", "t")},
			current:  []ent{l("s", "t").owner(1000, 1000)},
			next:     []ent{l("s", "t")},
			want:     []ent{l("s", "t").owner(1000, 1000)},
		},
		{
			name:     "symlinks pointing outside are copied, never followed",
			pristine: []ent{},
			current:  []ent{l("escape", "/etc/passwd"), l("up", "../../..")},
			next:     []ent{},
			want:     []ent{l("escape", "/etc/passwd"), l("up", "../../..")},
		},
		{
			name:     "local file to symlink",
			pristine: []ent{f("resolv.conf", "nameserver 1")},
			current:  []ent{l("resolv.conf", "/run/resolv.conf")},
			next:     []ent{f("resolv.conf", "nameserver 2")},
			want:     []ent{l("resolv.conf", "/run/resolv.conf")},
		},
		{
			name:     "local symlink to file",
			pristine: []ent{l("resolv.conf", "/run/resolv.conf")},
			current:  []ent{f("resolv.conf", "static")},
			next:     []ent{l("resolv.conf", "/run/other")},
			want:     []ent{f("resolv.conf", "static")},
		},
		{
			name:     "image turns an untouched file into a directory",
			pristine: []ent{f("conf", "1")},
			current:  []ent{f("conf", "1")},
			next:     []ent{f("conf/a", "a")},
			want:     []ent{f("conf/a", "a")},
		},
		{
			name:     "image turns an untouched directory into a file",
			pristine: []ent{f("conf/a", "a")},
			current:  []ent{f("conf/a", "a")},
			next:     []ent{f("conf", "flat")},
			want:     []ent{f("conf", "flat")},
		},
		{
			name:     "image turns an untouched file into a symlink",
			pristine: []ent{f("x", "1")},
			current:  []ent{f("x", "1")},
			next:     []ent{l("x", "y")},
			want:     []ent{l("x", "y")},
		},
		{
			name:     "local directory with only removals inside yields to the image's file",
			pristine: []ent{f("conf/a", "a"), f("conf/b", "b")},
			current:  []ent{f("conf/a", "a")},
			next:     []ent{f("conf", "flat")},
			want:     []ent{f("conf", "flat")},
		},
		{
			name:     "local directory metadata change yields to the image's file",
			pristine: []ent{d("conf"), f("conf/a", "a")},
			current:  []ent{d("conf").mode(0o700), f("conf/a", "a")},
			next:     []ent{f("conf", "flat")},
			want:     []ent{f("conf", "flat")},
		},
		{
			name:     "local file to directory wins when the image keeps the file as it was",
			pristine: []ent{f("conf", "1")},
			current:  []ent{f("conf/a", "a")},
			next:     []ent{f("conf", "1")},
			want:     []ent{f("conf/a", "a")},
		},
		{
			name:     "local directory to file wins when the image dropped the directory",
			pristine: []ent{f("conf/a", "a")},
			current:  []ent{f("conf", "flat")},
			next:     []ent{},
			want:     []ent{f("conf", "flat")},
		},
		{
			name:     "user xattrs are compared and preserved",
			pristine: []ent{f("a", "1"), f("b", "1").xattr("user.k", "v")},
			current:  []ent{f("a", "1").xattr("user.note", "mine"), f("b", "1").xattr("user.k", "v")},
			next:     []ent{f("a", "2"), f("b", "2")},
			want:     []ent{f("a", "1").xattr("user.note", "mine"), f("b", "2")},
		},
		{
			name:     "xattr-only removal is a local change",
			pristine: []ent{f("a", "1").xattr("user.k", "v")},
			current:  []ent{f("a", "1")},
			next:     []ent{f("a", "1").xattr("user.k", "v2")},
			want:     []ent{f("a", "1")},
		},
		{
			name:     "directory xattrs are preserved",
			pristine: []ent{},
			current:  []ent{d("dir").xattr("user.d", "1"), f("dir/x", "x")},
			next:     []ent{},
			want:     []ent{d("dir").xattr("user.d", "1"), f("dir/x", "x")},
		},
		{
			name:     "local fifo is skipped with a warning, new image version stays",
			pristine: []ent{f("a", "1")},
			current:  []ent{fifo("a"), fifo("pipe")},
			next:     []ent{f("a", "2")},
			want:     []ent{f("a", "2")},
			warnings: 2,
		},
		{
			name:     "fifo in the new image is skipped with a warning",
			pristine: []ent{},
			current:  []ent{},
			next:     []ent{fifo("p"), f("a", "1")},
			want:     []ent{f("a", "1")},
			warnings: 1,
		},
		{
			name:     "root directory metadata change wins",
			pristine: []ent{d("."), f("a", "1")},
			current:  []ent{d(".").mode(0o750), f("a", "1")},
			next:     []ent{f("a", "1")},
			want:     []ent{d(".").mode(0o750), f("a", "1")},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := setup(t, tc.pristine, tc.current, tc.next)
			want := filepath.Join(t.TempDir(), "want")
			build(t, want, tc.want)

			plan, err := Merge(tr.pristine, tr.current, tr.next, tr.out)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := describe(t, tr.out), describe(t, want); got != want {
				t.Errorf("merged tree:\n%s\nwant:\n%s", got, want)
			}
			if len(plan.Warnings) != tc.warnings {
				t.Errorf("warnings = %q, want %d", plan.Warnings, tc.warnings)
			}
		})
	}
}

func TestConflicts(t *testing.T) {
	cases := []struct {
		name                    string
		pristine, current, next []ent
		paths                   []string
	}{
		{
			name:     "locally modified file, image now has a directory",
			pristine: []ent{f("a.conf", "1")},
			current:  []ent{f("a.conf", "local")},
			next:     []ent{f("a.conf/x", "x")},
			paths:    []string{"a.conf"},
		},
		{
			name:     "locally added symlink, image adds a directory",
			pristine: []ent{},
			current:  []ent{l("x", "y")},
			next:     []ent{d("x")},
			paths:    []string{"x"},
		},
		{
			name:     "local directory to file while the image keeps the directory",
			pristine: []ent{f("conf/a", "a")},
			current:  []ent{f("conf", "flat")},
			next:     []ent{f("conf/a", "a")},
			paths:    []string{"conf"},
		},
		{
			name:     "locally added directory, image adds a file",
			pristine: []ent{},
			current:  []ent{d("x")},
			next:     []ent{f("x", "1")},
			paths:    []string{"x"},
		},
		{
			name:     "local file to directory while the image changes the file",
			pristine: []ent{f("conf", "1")},
			current:  []ent{f("conf/a", "a")},
			next:     []ent{f("conf", "2")},
			paths:    []string{"conf"},
		},
		{
			name:     "directory with local edits inside, image turns it into a symlink",
			pristine: []ent{f("conf/a", "a"), f("conf/b", "b")},
			current:  []ent{f("conf/a", "edited"), f("conf/b", "b")},
			next:     []ent{l("conf", "/usr/lib/conf")},
			paths:    []string{"conf"},
		},
		{
			name:     "several conflicts are all listed",
			pristine: []ent{f("a", "1"), f("b", "1"), f("ok", "1")},
			current:  []ent{f("a", "2"), f("b", "2"), f("ok", "2")},
			next:     []ent{d("a"), d("b"), f("ok", "1")},
			paths:    []string{"a", "b"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := setup(t, tc.pristine, tc.current, tc.next)
			plan, err := Plan(tr.pristine, tr.current, tr.next)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range plan.Conflicts {
				got = append(got, c.Path)
				if c.Reason == "" {
					t.Errorf("conflict %s has no reason", c.Path)
				}
			}
			if strings.Join(got, ",") != strings.Join(tc.paths, ",") {
				t.Fatalf("conflicts = %v, want paths %v", plan.Conflicts, tc.paths)
			}

			_, err = Merge(tr.pristine, tr.current, tr.next, tr.out)
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("Merge error = %v, want ErrConflict", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != 1+len(tc.paths) {
				t.Errorf("error has %d lines, want summary + %d:\n%s", len(lines), len(tc.paths), err)
			}
			for i, p := range tc.paths {
				if i+1 < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i+1]), p+": ") {
					t.Errorf("error line %d = %q, want it to name %s", i+1, lines[i+1], p)
				}
			}
			assertOnly(t, filepath.Dir(tr.out), "current", "new", "pristine")
		})
	}
}

// assertOnly checks that dir holds exactly the given names: no output, no temp leftovers.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	got, err := readNames(dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func TestPlanActions(t *testing.T) {
	tr := setup(t,
		[]ent{f("mod", "1"), f("gone", "1"), f("same", "1"), f("dropped", "1")},
		[]ent{f("mod", "2"), f("same", "1"), f("added", "a"), f("dropped", "1")},
		[]ent{f("mod", "1"), f("gone", "1"), f("same", "3"), f("fresh", "f")},
	)
	plan, err := Plan(tr.pristine, tr.current, tr.next)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range plan.Actions {
		got = append(got, fmt.Sprintf("%s:%s:%s:%s", a.Path, a.Change, a.From, a.Type))
	}
	want := []string{
		".:unchanged:new:directory",
		"added:added:current:regular file",
		"fresh:unchanged:new:regular file",
		"gone:removed:none:regular file",
		"mod:modified:current:regular file",
		"same:unchanged:new:regular file",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("actions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if s := plan.Summary(); s != "1 modified, 1 removed, 1 added" {
		t.Errorf("Summary() = %q", s)
	}
	assertOnly(t, filepath.Dir(tr.out), "current", "new", "pristine")
}

func TestHardlinksPreserved(t *testing.T) {
	tr := setup(t,
		[]ent{f("a", "1")},
		[]ent{f("a", "1"), f("x", "shared"), hard("y", "x"), f("sub/z", "z")},
		[]ent{f("a", "1"), f("n1", "n"), hard("n2", "n1")},
	)
	if _, err := Merge(tr.pristine, tr.current, tr.next, tr.out); err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{"x", "y"}, {"n1", "n2"}} {
		a, err := os.Stat(filepath.Join(tr.out, pair[0]))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.Stat(filepath.Join(tr.out, pair[1]))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(a, b) {
			t.Errorf("%s and %s are not one inode", pair[0], pair[1])
		}
	}
}

func TestCapabilityPreserved(t *testing.T) {
	requireRoot(t)
	// VFS_CAP_REVISION_2 with the effective flag, permitting CAP_NET_BIND_SERVICE (bit 10).
	capv2 := string([]byte{0x01, 0, 0, 0x02, 0, 0x04, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	tr := setup(t,
		[]ent{f("bin", "x").mode(0o755)},
		[]ent{f("bin", "y").mode(0o755).owner(1000, 1000).xattr("security.capability", capv2)},
		[]ent{f("bin", "x").mode(0o755)},
	)
	if _, err := Merge(tr.pristine, tr.current, tr.next, tr.out); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(tr.out, "bin"), "security.capability", buf)
	if err != nil {
		t.Fatalf("security.capability lost: %v", err)
	}
	if string(buf[:n]) != capv2 {
		t.Errorf("security.capability = %x, want %x", buf[:n], capv2)
	}
}

func TestApplyRefusesExistingOutput(t *testing.T) {
	tr := setup(t, []ent{f("a", "1")}, []ent{f("a", "1")}, []ent{f("a", "2")})
	if err := os.Mkdir(tr.out, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Merge(tr.pristine, tr.current, tr.next, tr.out)
	if !errors.Is(err, ErrOutputExists) {
		t.Fatalf("error = %v, want ErrOutputExists", err)
	}
	if names, _ := readNames(tr.out); len(names) != 0 {
		t.Errorf("existing output was written to: %v", names)
	}
	assertOnly(t, filepath.Dir(tr.out), "current", "new", "out", "pristine")
}

func TestApplyRefusesOutputInsideSource(t *testing.T) {
	tr := setup(t, []ent{f("a", "1")}, []ent{f("a", "1")}, []ent{f("a", "2")})
	_, err := Merge(tr.pristine, tr.current, tr.next, filepath.Join(tr.current, "merged"))
	if err == nil || !strings.Contains(err.Error(), "inside the source tree") {
		t.Fatalf("error = %v, want refusal of output inside a source tree", err)
	}
}

func TestApplySourceChangedLeavesNothing(t *testing.T) {
	tr := setup(t,
		[]ent{f("a", "1")},
		[]ent{f("a", "local"), f("b", "b")},
		[]ent{f("a", "2")},
	)
	plan, err := Plan(tr.pristine, tr.current, tr.next)
	if err != nil {
		t.Fatal(err)
	}
	// Between planning and applying, a planned file becomes a symlink.
	if err := os.Remove(filepath.Join(tr.current, "b")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/shadow", filepath.Join(tr.current, "b")); err != nil {
		t.Fatal(err)
	}
	err = Apply(plan, tr.out)
	if !errors.Is(err, ErrChanged) {
		t.Fatalf("error = %v, want ErrChanged", err)
	}
	assertOnly(t, filepath.Dir(tr.out), "current", "new", "pristine")
}

func TestPlanRejectsBadRoots(t *testing.T) {
	tr := setup(t, nil, nil, nil)
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(tr.current, link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pristine, current, next, msg string
	}{
		{"missing", filepath.Join(tr.pristine, "nope"), tr.current, tr.next, "pristine tree"},
		{"file", tr.pristine, file, tr.next, "not a directory"},
		{"symlink root", tr.pristine, tr.current, link, "is a symlink, not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Plan(tc.pristine, tc.current, tc.next)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error = %v, want one containing %q", err, tc.msg)
			}
		})
	}
}
