package store

import (
	"fmt"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
)

// node is one entry of the merged tree. Tar hardlinks are resolved when they
// are applied, so a node is only ever a file, a directory or a symlink.
type node struct {
	e        Entry
	layer    digest.Digest // the layer the entry came from, for error messages
	children map[string]*node
}

// tree is the in-memory merge of layer indexes. Every write Compose makes is
// a node of this tree below a directory node Compose created itself, so the
// filesystem is never asked to resolve a path through something a layer
// controls.
type tree struct {
	root *node
	cur  digest.Digest // the layer being applied
}

func newTree() *tree {
	return &tree{root: &node{
		e:        Entry{Path: ".", Type: TypeDir, Mode: 0o755},
		children: make(map[string]*node),
	}}
}

// apply merges one layer over the tree. Whiteouts go first: by the OCI rules
// they hide only lower-layer content, so a whiteout and an entry of the same
// layer never cancel out, whatever their order in the tar. The other entries
// follow in tar order and a later one replaces an earlier one at the same path
// (the last duplicate wins, as when extracting with tar).
func (t *tree) apply(ix *Index) error {
	t.cur = ix.DiffID
	for i := range ix.Entries {
		e := &ix.Entries[i]
		if e.Type != TypeWhiteout && e.Type != TypeOpaque {
			continue
		}
		if err := t.whiteout(e); err != nil {
			return fmt.Errorf("layer %s: entry %q: %w", ix.DiffID, e.tarName(), err)
		}
	}
	for i := range ix.Entries {
		e := &ix.Entries[i]
		if e.Type == TypeWhiteout || e.Type == TypeOpaque {
			continue
		}
		if err := t.insert(e, ix.DiffID); err != nil {
			return fmt.Errorf("layer %s: entry %q: %w", ix.DiffID, e.Path, err)
		}
	}
	return nil
}

// tarName rebuilds the member name a decoded whiteout came from, so errors
// name what the layer's author wrote.
func (e *Entry) tarName() string {
	switch e.Type {
	case TypeOpaque:
		return path.Join(e.Path, whiteoutOpaque)
	case TypeWhiteout:
		dir, base := path.Split(e.Path)
		return dir + whiteoutPrefix + base
	}
	return e.Path
}

// errMissing reports a parent that does not exist when it may not be created.
var errMissing = fmt.Errorf("no such entry")

// parent walks to the directory that holds p. Missing directories are created
// with the defaults tar uses (0755, root-owned) when create is set. A symlink
// on the way is an error rather than something to follow: container engines
// disagree on what it means (overlay-based ones replace the symlink with a
// directory, extract-in-place ones follow it), layers produced by diffing a
// filesystem never contain such paths, and following it is how a hostile layer
// writes to a place its index does not name.
func (t *tree) parent(p string, create bool) (*node, string, error) {
	comps := strings.Split(p, "/")
	n := t.root
	for i, c := range comps[:len(comps)-1] {
		child := n.children[c]
		if child == nil {
			if !create {
				return nil, "", errMissing
			}
			child = &node{
				e:        Entry{Path: strings.Join(comps[:i+1], "/"), Type: TypeDir, Mode: 0o755},
				layer:    t.cur,
				children: make(map[string]*node),
			}
			n.children[c] = child
		}
		switch child.e.Type {
		case TypeDir:
			n = child
		case TypeSymlink:
			return nil, "", fmt.Errorf("%w: parent %q is a symlink", ErrUnsafeEntry, strings.Join(comps[:i+1], "/"))
		default:
			return nil, "", fmt.Errorf("parent %q is not a directory", strings.Join(comps[:i+1], "/"))
		}
	}
	return n, comps[len(comps)-1], nil
}

func (t *tree) whiteout(e *Entry) error {
	if e.Type == TypeOpaque && e.Path == "." {
		t.root.children = make(map[string]*node)
		return nil
	}
	dir, name, err := t.parent(e.Path, false)
	if err == errMissing {
		return nil // nothing below to hide
	}
	if err != nil {
		return err
	}
	if e.Type == TypeWhiteout {
		delete(dir.children, name)
		return nil
	}
	if n := dir.children[name]; n != nil && n.e.Type == TypeDir {
		n.children = make(map[string]*node)
	}
	return nil
}

func (t *tree) insert(e *Entry, layer digest.Digest) error {
	if e.Path == "." {
		t.root.e, t.root.layer = *e, layer
		return nil
	}
	dir, name, err := t.parent(e.Path, true)
	if err != nil {
		return err
	}
	old := dir.children[name]
	switch e.Type {
	case TypeDir:
		if old != nil && old.e.Type == TypeDir {
			// A directory over a directory merges: children stay, metadata
			// is the newer one.
			old.e, old.layer = *e, layer
			return nil
		}
		dir.children[name] = &node{e: *e, layer: layer, children: make(map[string]*node)}
	case TypeFile, TypeSymlink:
		dir.children[name] = &node{e: *e, layer: layer}
	case TypeHardlink:
		target, err := t.hardlinkTarget(e.Link)
		if err != nil {
			return err
		}
		f := target.e
		f.Path = e.Path
		dir.children[name] = &node{e: f, layer: layer}
	default:
		return fmt.Errorf("unexpected entry type %q", e.Type)
	}
	return nil
}

// hardlinkTarget finds the regular file a tar hardlink points at, in the tree
// as it stands (lower layers and earlier entries of this layer).
func (t *tree) hardlinkTarget(link string) (*node, error) {
	dir, name, err := t.parent(link, false)
	if err == errMissing {
		return nil, fmt.Errorf("hardlink target %q does not exist", link)
	}
	if err != nil {
		return nil, fmt.Errorf("hardlink target %q: %w", link, err)
	}
	n := dir.children[name]
	if n == nil {
		return nil, fmt.Errorf("hardlink target %q does not exist", link)
	}
	if n.e.Type != TypeFile {
		return nil, fmt.Errorf("%w: hardlink target %q is a %s, not a regular file", ErrUnsafeEntry, link, n.e.Type)
	}
	return n, nil
}
