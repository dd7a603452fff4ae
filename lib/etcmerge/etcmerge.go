// Package etcmerge carries the local changes of a deployment's /etc into the /etc of the next one.
//
// It is a three-way merge over directory trees, decided per path:
//
//   - pristine: the booted deployment's image defaults (its usr/etc),
//   - current: the booted deployment's live, locally modified /etc,
//   - new: the new image's defaults (its usr/etc).
//
// A path is untouched when current matches pristine exactly (type, content bytes, symlink
// target, mode, uid, gid and xattrs; never mtime). Untouched paths take the new image's
// version, including its deletions. Paths modified or added locally are copied from current
// and win over the new image; paths removed locally stay removed, even if the new image
// changed them, and a locally removed directory takes everything below it with it, including
// entries the new image adds there. There is no merge inside a file.
//
// Directories are decided like any other path: a directory whose own metadata changed
// locally keeps its local mode, owner and xattrs, and a locally added directory is kept
// together with whatever the new image puts inside it. A directory that is untouched itself
// but holds local changes survives even when the new image dropped it.
//
// Two situations cannot be merged and are reported as conflicts:
//   - a locally modified or added file or symlink where the new image has a directory:
//     taking either side would drop the other's content wholesale;
//   - a local directory where the new image has a file or symlink, when the directory holds
//     anything local: it was created locally (added, or it replaced a non-directory), or an
//     entry below it was modified or added.
//
// Two refinements keep the second rule from refusing updates needlessly. A directory whose
// only local changes are its own mode, owner or xattrs, or removals below it, yields to the
// new image's file or symlink, since nothing local but that metadata is lost. A directory
// that locally replaced a file or symlink wins when the new image ships that file or symlink
// exactly as pristine did: the image offers nothing the local side has not already dropped.
//
// Sockets, fifos and device nodes are never copied; each one met is reported in
// MergePlan.Warnings. A locally modified or added special file leaves the new image's version in
// place.
//
// Symlinks are never followed: every entry is examined with lstat and opened with
// O_NOFOLLOW, and all paths are relative to the three roots.
package etcmerge

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrConflict is matched (errors.Is) by the *ConflictError that Merge and Apply return.
var ErrConflict = errors.New("etc merge conflict")

// ErrOutputExists means the output directory given to Apply or Merge already exists.
var ErrOutputExists = errors.New("output already exists")

// ErrChanged means a source entry changed type between Plan and Apply.
var ErrChanged = errors.New("changed since the merge was planned")

// Type is the kind of a directory entry.
type Type uint8

const (
	TypeRegular Type = iota
	TypeDir
	TypeSymlink
	TypeSpecial // socket, fifo or device node: never copied
)

func (t Type) String() string {
	switch t {
	case TypeRegular:
		return "regular file"
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	case TypeSpecial:
		return "special file"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Change says what the local side did to a path, relative to pristine.
type Change uint8

const (
	Unchanged Change = iota // current matches pristine, or the path is in neither
	Modified                // in both, but different
	Added                   // in current only
	Removed                 // in pristine only
)

func (c Change) String() string {
	switch c {
	case Unchanged:
		return "unchanged"
	case Modified:
		return "modified"
	case Added:
		return "added"
	case Removed:
		return "removed"
	}
	return fmt.Sprintf("Change(%d)", uint8(c))
}

// Source names the tree a result entry is copied from.
type Source uint8

const (
	FromNone    Source = iota // the path is absent from the result
	FromNew                   // the new image's defaults
	FromCurrent               // the live, locally modified /etc
)

func (s Source) String() string {
	switch s {
	case FromNone:
		return "none"
	case FromNew:
		return "new"
	case FromCurrent:
		return "current"
	}
	return fmt.Sprintf("Source(%d)", uint8(s))
}

// Action is one path of the merge result, or one local removal.
type Action struct {
	Path   string // relative to the roots and cleaned; "." is the root itself
	Change Change // what the local side did to Path
	From   Source // where the result entry comes from; FromNone only for Removed
	Type   Type   // type of the entry copied (for Removed: of the pristine entry)
}

// Conflict is a path the merge cannot decide.
type Conflict struct {
	Path   string
	Reason string
}

func (c Conflict) String() string { return c.Path + ": " + c.Reason }

// ConflictError lists every conflict of a refused merge.
type ConflictError struct {
	Conflicts []Conflict
}

// Error gives a one-line summary followed by one line per conflicting path.
func (e *ConflictError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "merging /etc: %d conflicting path(s)", len(e.Conflicts))
	for _, c := range e.Conflicts {
		b.WriteString("\n  ")
		b.WriteString(c.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// MergePlan is a decided merge that has not touched anything yet.
type MergePlan struct {
	Pristine, Current, New string // the three roots, cleaned

	// Actions holds every entry of the result in depth-first path order, parents before
	// their children, interleaved with the local removals (From == FromNone).
	Actions   []Action
	Conflicts []Conflict
	Warnings  []string // one line per special file skipped
}

// Count returns how many actions report the given local change.
func (p *MergePlan) Count(c Change) int {
	n := 0
	for _, a := range p.Actions {
		if a.Change == c {
			n++
		}
	}
	return n
}

// Summary is a one-line account of the local changes carried over, for the journal.
func (p *MergePlan) Summary() string {
	return fmt.Sprintf("%d modified, %d removed, %d added", p.Count(Modified), p.Count(Removed), p.Count(Added))
}

// Plan decides the merge of pristine, current and next (the new image's defaults) without
// writing anything. Conflicts are returned in the plan, not as an error; the error is for
// missing or unreadable trees.
func Plan(pristine, current, next string) (*MergePlan, error) {
	pl := &planner{plan: &MergePlan{
		Pristine: filepath.Clean(pristine),
		Current:  filepath.Clean(current),
		New:      filepath.Clean(next),
	}}
	var roots [3]*entry
	for i, r := range []struct{ name, path string }{
		{"pristine", pl.plan.Pristine}, {"current", pl.plan.Current}, {"new", pl.plan.New},
	} {
		e, err := lstatEntry(r.path)
		if err != nil {
			return nil, fmt.Errorf("planning etc merge: %s tree: %w", r.name, err)
		}
		if e == nil {
			return nil, fmt.Errorf("planning etc merge: %s tree %s: %w", r.name, r.path, fs.ErrNotExist)
		}
		if e.typ != TypeDir {
			return nil, fmt.Errorf("planning etc merge: %s tree %s is a %s, not a directory", r.name, r.path, e.typ)
		}
		roots[i] = e
	}
	pl.roots = [3]string{pl.plan.Pristine, pl.plan.Current, pl.plan.New}
	if _, err := pl.walk(".", roots[0], roots[1], roots[2]); err != nil {
		return nil, fmt.Errorf("planning etc merge: %w", err)
	}
	return pl.plan, nil
}

// Merge plans the merge, refuses it with a *ConflictError when anything conflicts (creating
// no output), and otherwise writes the result to output, which must not exist yet. The plan
// is returned for its summary and warnings.
func Merge(pristine, current, next, output string) (*MergePlan, error) {
	p, err := Plan(pristine, current, next)
	if err != nil {
		return nil, err
	}
	if err := Apply(p, output); err != nil {
		return p, err
	}
	return p, nil
}

const (
	treePristine = iota
	treeCurrent
	treeNew
)

type planner struct {
	plan  *MergePlan
	roots [3]string
	bufA  []byte
	bufB  []byte
}

func (pl *planner) path(tree int, rel string) string {
	return filepath.Join(pl.roots[tree], rel)
}

func (pl *planner) emit(rel string, c Change, from Source, t Type) {
	pl.plan.Actions = append(pl.plan.Actions, Action{Path: rel, Change: c, From: from, Type: t})
}

// emitNew takes the new image's entry, unless it is a special file.
func (pl *planner) emitNew(rel string, n *entry) {
	if n.typ == TypeSpecial {
		pl.warn("%s: skipping %s from the new image", rel, n.describe())
		return
	}
	pl.emit(rel, Unchanged, FromNew, n.typ)
}

func (pl *planner) warn(format string, args ...any) {
	pl.plan.Warnings = append(pl.plan.Warnings, fmt.Sprintf(format, args...))
}

func (pl *planner) conflict(rel, format string, args ...any) {
	pl.plan.Conflicts = append(pl.plan.Conflicts, Conflict{Path: rel, Reason: fmt.Sprintf(format, args...)})
}

// discard drops the actions from mark on, except local removals, which stay true
// whatever happens to the directory that held them.
func (pl *planner) discard(mark int) {
	kept := pl.plan.Actions[:mark]
	for _, a := range pl.plan.Actions[mark:] {
		if a.Change == Removed {
			kept = append(kept, a)
		}
	}
	pl.plan.Actions = kept
}

// firstLocal names the first entry copied from current among the actions from mark on.
func (pl *planner) firstLocal(mark int) string {
	for _, a := range pl.plan.Actions[mark:] {
		if a.From == FromCurrent {
			return a.Path
		}
	}
	return ""
}

// walk decides rel and everything below it. It reports whether the result below rel holds
// anything copied from current, which keeps parent directories alive.
func (pl *planner) walk(rel string, p, c, n *entry) (bool, error) {
	change, err := pl.classify(rel, p, c)
	if err != nil {
		return false, err
	}
	if c != nil && c.typ == TypeSpecial && (change == Modified || change == Added) {
		pl.warn("%s: skipping locally %s %s", rel, change, c.describe())
		change = Unchanged
	}
	switch change {
	case Removed:
		pl.emit(rel, Removed, FromNone, p.typ)
		return false, nil
	case Modified, Added:
		return pl.local(rel, change, p, c, n)
	}
	return pl.untouched(rel, p, c, n)
}

// untouched handles a path the local side left alone: the new image decides, except that a
// local directory survives for the local changes inside it.
func (pl *planner) untouched(rel string, p, c, n *entry) (bool, error) {
	switch {
	case n != nil && n.typ == TypeDir:
		pl.emit(rel, Unchanged, FromNew, TypeDir)
		return pl.children(rel, p, c, n)
	case c != nil && c.typ == TypeDir:
		mark := len(pl.plan.Actions)
		pl.emit(rel, Unchanged, FromCurrent, TypeDir)
		keep, err := pl.children(rel, p, c, nil)
		if err != nil {
			return false, err
		}
		if !keep {
			pl.discard(mark)
			if n != nil {
				pl.emitNew(rel, n)
			}
			return false, nil
		}
		if n != nil {
			pl.conflict(rel, "directory holds local changes (%s), but the new image has a %s here",
				pl.firstLocal(mark+1), n.typ)
			pl.discard(mark)
		}
		return true, nil
	case n != nil:
		pl.emitNew(rel, n)
	}
	return false, nil
}

// local handles a path the local side modified or added: current wins where it can.
func (pl *planner) local(rel string, change Change, p, c, n *entry) (bool, error) {
	newDir := n != nil && n.typ == TypeDir
	if c.typ != TypeDir {
		if newDir {
			pl.conflict(rel, "locally %s %s, but the new image has a directory here", change, c.typ)
			return true, nil
		}
		pl.emit(rel, change, FromCurrent, c.typ)
		return true, nil
	}
	if n == nil || newDir {
		pl.emit(rel, change, FromCurrent, TypeDir)
		_, err := pl.children(rel, p, c, n)
		return true, err
	}
	// A local directory against the new image's file or symlink.
	mark := len(pl.plan.Actions)
	pl.emit(rel, change, FromCurrent, TypeDir)
	keep, err := pl.children(rel, p, c, nil)
	if err != nil {
		return false, err
	}
	first := pl.firstLocal(mark + 1)
	if p != nil && p.typ != TypeDir {
		// The directory replaced a file or symlink. If the new image ships that entry
		// unchanged, it offers nothing the local side has not already chosen to drop.
		same, err := pl.same(rel, treePristine, p, treeNew, n)
		if err != nil {
			return false, err
		}
		if same {
			return true, nil
		}
	}
	pl.discard(mark)
	switch {
	case p == nil || p.typ != TypeDir:
		pl.conflict(rel, "locally %s directory, but the new image has a %s here", change, n.typ)
		return true, nil
	case keep:
		pl.conflict(rel, "directory holds local changes (%s), but the new image has a %s here", first, n.typ)
		return true, nil
	}
	pl.emitNew(rel, n)
	return false, nil
}

// children walks the union of the entries below rel in those of the three trees where rel
// is a directory.
func (pl *planner) children(rel string, p, c, n *entry) (bool, error) {
	present := map[string]uint8{}
	for tree, e := range [3]*entry{p, c, n} {
		if e == nil || e.typ != TypeDir {
			continue
		}
		names, err := readNames(pl.path(tree, rel))
		if err != nil {
			return false, err
		}
		for _, name := range names {
			present[name] |= 1 << tree
		}
	}
	names := make([]string, 0, len(present))
	for name := range present {
		names = append(names, name)
	}
	sort.Strings(names)
	keep := false
	for _, name := range names {
		child := filepath.Join(rel, name)
		var es [3]*entry
		for tree := range es {
			if present[name]&(1<<tree) == 0 {
				continue
			}
			e, err := lstatEntry(pl.path(tree, child))
			if err != nil {
				return false, err
			}
			es[tree] = e
		}
		if es[0] == nil && es[1] == nil && es[2] == nil {
			continue // vanished since the listing
		}
		k, err := pl.walk(child, es[0], es[1], es[2])
		if err != nil {
			return false, err
		}
		keep = keep || k
	}
	return keep, nil
}

func (pl *planner) classify(rel string, p, c *entry) (Change, error) {
	switch {
	case p == nil && c == nil:
		return Unchanged, nil
	case c == nil:
		return Removed, nil
	case p == nil:
		return Added, nil
	}
	same, err := pl.same(rel, treePristine, p, treeCurrent, c)
	if err != nil {
		return 0, err
	}
	if same {
		return Unchanged, nil
	}
	return Modified, nil
}

// same compares everything but timestamps, cheapest checks first.
func (pl *planner) same(rel string, ta int, p *entry, tb int, c *entry) (bool, error) {
	if p.typ != c.typ || p.format != c.format || p.uid != c.uid || p.gid != c.gid {
		return false, nil
	}
	if p.typ != TypeSymlink && p.perm != c.perm {
		return false, nil
	}
	if p.dev == c.dev && p.ino == c.ino {
		return true, nil // one inode seen twice
	}
	pp, cp := pl.path(ta, rel), pl.path(tb, rel)
	switch p.typ {
	case TypeRegular:
		if p.size != c.size {
			return false, nil
		}
	case TypeSpecial:
		if p.rdev != c.rdev {
			return false, nil
		}
	case TypeSymlink:
		pt, err := readlink(pp)
		if err != nil {
			return false, err
		}
		ct, err := readlink(cp)
		if err != nil {
			return false, err
		}
		if pt != ct {
			return false, nil
		}
	}
	px, err := pathXattrs(pp)
	if err != nil {
		return false, err
	}
	cx, err := pathXattrs(cp)
	if err != nil {
		return false, err
	}
	if !sameXattrs(px, cx) {
		return false, nil
	}
	if p.typ == TypeRegular {
		if pl.bufA == nil {
			pl.bufA, pl.bufB = make([]byte, 64<<10), make([]byte, 64<<10)
		}
		return sameContent(pp, cp, pl.bufA, pl.bufB)
	}
	return true, nil
}

func readlink(path string) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Readlink(path, buf)
		if err != nil {
			return "", &fs.PathError{Op: "readlink", Path: path, Err: err}
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}
