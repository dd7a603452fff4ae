package store

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"github.com/opencontainers/go-digest"

	"gobootc.dev/lib/durable"
)

// indexVersion is bumped whenever Entry changes meaning.
const indexVersion = 1

// EntryType is the kind of a layer index entry.
type EntryType string

// Entry kinds. Whiteouts are stored already decoded: TypeWhiteout names the path
// to remove from lower layers, TypeOpaque names the directory whose lower-layer
// children are hidden.
const (
	TypeFile     EntryType = "file"
	TypeDir      EntryType = "dir"
	TypeSymlink  EntryType = "symlink"
	TypeHardlink EntryType = "hardlink"
	TypeWhiteout EntryType = "whiteout"
	TypeOpaque   EntryType = "opaque"
)

// Entry is one validated tar member of a layer, in tar order.
type Entry struct {
	// Path is relative to the image root, without "." or ".." components;
	// "." is the root itself.
	Path string    `json:"path"`
	Type EntryType `json:"type"`
	// Mode holds the permission bits including setuid, setgid and sticky.
	Mode   uint32            `json:"mode,omitempty"`
	UID    uint32            `json:"uid,omitempty"`
	GID    uint32            `json:"gid,omitempty"`
	Xattrs map[string][]byte `json:"xattrs,omitempty"`
	// Link is the symlink target (verbatim) or the hardlink target (a path
	// like Path).
	Link string `json:"link,omitempty"`
	// Object is the object key of a regular file.
	Object string `json:"object,omitempty"`
	Size   int64  `json:"size,omitempty"`
}

// Index is the stored description of one imported layer.
type Index struct {
	Version int           `json:"version"`
	DiffID  digest.Digest `json:"diffID"`
	Entries []Entry       `json:"entries"`
}

func (s *Store) readIndex(diffID digest.Digest) (*Index, error) {
	hex, err := layerHex(diffID)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(s.layerPath(hex))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading layer %s: %w", diffID, ErrLayerNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading layer %s: %w", diffID, err)
	}
	defer f.Close()
	var ix Index
	if err := json.NewDecoder(bufio.NewReader(f)).Decode(&ix); err != nil {
		return nil, fmt.Errorf("reading layer %s index: %w", diffID, err)
	}
	if ix.Version != indexVersion {
		return nil, fmt.Errorf("reading layer %s index: version %d, want %d", diffID, ix.Version, indexVersion)
	}
	if ix.DiffID != diffID {
		return nil, fmt.Errorf("reading layer %s index: it describes %s", diffID, ix.DiffID)
	}
	// The index was validated when written; checking again keeps a damaged or
	// tampered index from steering Compose outside the tree.
	for i := range ix.Entries {
		if err := checkEntry(&ix.Entries[i]); err != nil {
			return nil, fmt.Errorf("layer %s: entry %q: %w", diffID, ix.Entries[i].Path, err)
		}
	}
	return &ix, nil
}

// checkEntry re-validates an entry read back from an index.
func checkEntry(e *Entry) error {
	p, err := cleanPath(e.Path)
	if err != nil {
		return err
	}
	if p != e.Path {
		return fmt.Errorf("%w: path not in canonical form", ErrUnsafeEntry)
	}
	if e.Mode&^0o7777 != 0 {
		return fmt.Errorf("mode %o has non-permission bits", e.Mode)
	}
	switch e.Type {
	case TypeFile:
		if !validKey(e.Object) {
			return fmt.Errorf("object key %q is malformed", e.Object)
		}
	case TypeDir:
	case TypeSymlink:
		if err := checkSymlinkTarget(e.Link); err != nil {
			return err
		}
	case TypeHardlink:
		l, err := cleanPath(e.Link)
		if err != nil || l != e.Link || l == "." {
			return fmt.Errorf("%w: hardlink target %q is not a canonical path", ErrUnsafeEntry, e.Link)
		}
	case TypeWhiteout, TypeOpaque:
	default:
		return fmt.Errorf("unknown entry type %q", e.Type)
	}
	if e.Path == "." && e.Type != TypeDir && e.Type != TypeOpaque {
		return fmt.Errorf("%w: root entry of type %s", ErrUnsafeEntry, e.Type)
	}
	return nil
}

func (s *Store) writeIndex(hex string, ix *Index) error {
	pf, err := renameio.NewPendingFile(s.layerPath(hex),
		renameio.WithTempDir(filepath.Join(s.dir, tmpDir)),
		renameio.WithStaticPermissions(0o600))
	if err != nil {
		return fmt.Errorf("writing layer index: %w", err)
	}
	defer pf.Cleanup()
	w := bufio.NewWriterSize(pf, 1<<16)
	if err := json.NewEncoder(w).Encode(ix); err != nil {
		return fmt.Errorf("writing layer index: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("writing layer index: %w", err)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("writing layer index: %w", err)
	}
	return durable.Sync(filepath.Join(s.dir, layersDir))
}
