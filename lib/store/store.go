package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"gobootc.dev/lib/durable"
)

// Errors callers test with errors.Is.
var (
	// ErrDiffIDMismatch: the uncompressed stream does not hash to the expected diff ID.
	ErrDiffIDMismatch = errors.New("diff ID mismatch")
	// ErrLayerNotFound: no complete index for the layer is stored.
	ErrLayerNotFound = errors.New("layer not in store")
	// ErrUnsafeEntry: a layer entry tries to reach outside the tree (path traversal,
	// write through a symlink, hardlink to a non-regular file or outside the tree,
	// malformed whiteout).
	ErrUnsafeEntry = errors.New("unsafe layer entry")
	// ErrDestNotEmpty: Compose was given a destination that already has entries.
	ErrDestNotEmpty = errors.New("destination not empty")
)

const (
	objectsDir = "objects"
	layersDir  = "layers"
	tmpDir     = "tmp"
)

// Store is a content store rooted at one directory.
type Store struct {
	dir string
}

// Open opens the store at dir, creating it (mode 0700) and its subdirectories if
// needed, forcing dir to mode 0700, and removing whatever an interrupted writer
// left in tmp/.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", dir, err)
	}
	if err := os.Mkdir(abs, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	fi, err := os.Lstat(abs)
	if err != nil {
		return nil, fmt.Errorf("opening store: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("opening store %s: not a directory", abs)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(abs, 0o700); err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
	}
	for _, sub := range []string{objectsDir, layersDir, tmpDir} {
		p := filepath.Join(abs, sub)
		if err := os.Mkdir(p, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("opening store: %w", err)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, fmt.Errorf("opening store: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("opening store: %s is not a directory", p)
		}
	}
	s := &Store{dir: abs}
	if err := s.cleanTmp(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the store's absolute directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) cleanTmp() error {
	tmp := filepath.Join(s.dir, tmpDir)
	ents, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("cleaning store tmp: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(tmp, e.Name())); err != nil {
			return fmt.Errorf("cleaning store tmp: %w", err)
		}
	}
	return nil
}

// layerHex validates a diff ID and returns its hex part. Only sha256 is accepted:
// it is what OCI diff IDs use, and the hex part becomes a file name.
func layerHex(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("diff ID %q: %w", string(d), err)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("diff ID %q: only sha256 is supported", string(d))
	}
	return d.Encoded(), nil
}

func (s *Store) layerPath(hex string) string {
	return filepath.Join(s.dir, layersDir, hex)
}

// LayerPath is where the index of a complete layer is stored; its files are objects, shared
// between layers.
func (s *Store) LayerPath(diffID digest.Digest) string { return s.layerPath(diffID.Encoded()) }

// ObjectsDir holds every object, in directories named by the first two digits of their key.
func (s *Store) ObjectsDir() string { return filepath.Join(s.dir, objectsDir) }

// HasLayer reports whether the layer was imported completely.
func (s *Store) HasLayer(diffID digest.Digest) (bool, error) {
	hex, err := layerHex(diffID)
	if err != nil {
		return false, err
	}
	_, err = os.Lstat(s.layerPath(hex))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("checking layer %s: %w", diffID, err)
	}
	return true, nil
}

// Layers lists the diff IDs of all complete layers, sorted.
func (s *Store) Layers() ([]digest.Digest, error) {
	ents, err := os.ReadDir(filepath.Join(s.dir, layersDir))
	if err != nil {
		return nil, fmt.Errorf("listing layers: %w", err)
	}
	var out []digest.Digest
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue // not ours; never delete or report what we did not write
		}
		out = append(out, d)
	}
	return out, nil
}

// Remove deletes a layer's index. Its objects stay until GC.
func (s *Store) Remove(diffID digest.Digest) error {
	hex, err := layerHex(diffID)
	if err != nil {
		return err
	}
	if err := os.Remove(s.layerPath(hex)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing layer %s: %w", diffID, ErrLayerNotFound)
		}
		return fmt.Errorf("removing layer %s: %w", diffID, err)
	}
	return durable.Sync(filepath.Join(s.dir, layersDir))
}

// Objects returns the sorted keys of the objects that the given layers' indexes
// reference.
func (s *Store) Objects(layers ...digest.Digest) ([]string, error) {
	set, err := s.objectSet(layers)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (s *Store) objectSet(layers []digest.Digest) (map[string]struct{}, error) {
	set := make(map[string]struct{})
	for _, d := range layers {
		ix, err := s.readIndex(d)
		if err != nil {
			return nil, err
		}
		for _, e := range ix.Entries {
			if e.Type == TypeFile {
				set[e.Object] = struct{}{}
			}
		}
	}
	return set, nil
}

// ObjectPath returns where the object with the given key is stored.
func (s *Store) ObjectPath(key string) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("object key %q: not 64 lowercase hex digits", key)
	}
	return filepath.Join(s.dir, objectsDir, objectRel(key)), nil
}

// GCStats describes what GC removed.
type GCStats struct {
	LayersRemoved  int
	ObjectsRemoved int
	// ObjectsInUse counts unreferenced objects kept because something outside
	// the store (a deployment) still hardlinks them.
	ObjectsInUse int
	// BytesFreed sums the sizes of the removed objects and indexes.
	BytesFreed int64
}

// GC removes every layer index not in keep, then every object that no kept
// layer references and that nothing else hardlinks (link count 1). Every layer
// in keep must be present: a mistyped diff ID must not make GC treat its objects
// as garbage.
func (s *Store) GC(keep []digest.Digest) (GCStats, error) {
	var st GCStats
	kept, err := s.keptLayers(keep)
	if err != nil {
		return st, fmt.Errorf("garbage-collecting store: %w", err)
	}
	refs, err := s.objectSet(keep)
	if err != nil {
		return st, fmt.Errorf("garbage-collecting store: %w", err)
	}
	if err := s.removeLayers(kept, &st); err != nil {
		return st, fmt.Errorf("garbage-collecting store: %w", err)
	}
	if err := s.removeObjects(refs, &st); err != nil {
		return st, fmt.Errorf("garbage-collecting store: %w", err)
	}
	return st, nil
}

// keptLayers is the set of layers in keep, each of which must be present.
func (s *Store) keptLayers(keep []digest.Digest) (map[digest.Digest]bool, error) {
	kept := make(map[digest.Digest]bool)
	for _, d := range keep {
		ok, err := s.HasLayer(d)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("keeping %s: %w", d, ErrLayerNotFound)
		}
		kept[d] = true
	}
	return kept, nil
}

// removeLayers removes the index of every layer not in kept, counting it in st.
func (s *Store) removeLayers(kept map[digest.Digest]bool, st *GCStats) error {
	all, err := s.Layers()
	if err != nil {
		return err
	}
	for _, d := range all {
		if kept[d] {
			continue
		}
		hex, _ := layerHex(d)
		if fi, err := os.Lstat(s.layerPath(hex)); err == nil {
			st.BytesFreed += fi.Size()
		}
		if err := s.Remove(d); err != nil {
			return err
		}
		st.LayersRemoved++
	}
	return nil
}

// removeObjects removes, fan-out directory by fan-out directory, every object not in refs
// that nothing outside the store links, counting it in st.
func (s *Store) removeObjects(refs map[string]struct{}, st *GCStats) error {
	objRoot := filepath.Join(s.dir, objectsDir)
	fans, err := os.ReadDir(objRoot)
	if err != nil {
		return err
	}
	for _, fan := range fans {
		if len(fan.Name()) != 2 || !fan.IsDir() {
			continue
		}
		if err := removeFanObjects(filepath.Join(objRoot, fan.Name()), fan.Name(), refs, st); err != nil {
			return err
		}
	}
	return nil
}

// removeFanObjects does removeObjects' work in the fan-out directory dir of the keys that
// start with fan, and makes the removals durable.
func removeFanObjects(dir, fan string, refs map[string]struct{}, st *GCStats) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	removed := false
	for _, e := range ents {
		key := fan + e.Name()
		if !validKey(key) {
			continue
		}
		if _, ok := refs[key]; ok {
			continue
		}
		var sb unix.Stat_t
		p := filepath.Join(dir, e.Name())
		if err := unix.Lstat(p, &sb); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		if sb.Nlink > 1 {
			st.ObjectsInUse++
			continue
		}
		if err := os.Remove(p); err != nil {
			return err
		}
		removed = true
		st.ObjectsRemoved++
		st.BytesFreed += sb.Size
	}
	if removed {
		return durable.Sync(dir)
	}
	return nil
}
