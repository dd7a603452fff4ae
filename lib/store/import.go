package store

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"gobootc.dev/lib/durable"
)

// ImportStats describes one ImportLayer call.
type ImportStats struct {
	// Present: the layer was already complete, so the stream was not read.
	Present bool
	// Bytes is the length of the uncompressed stream (what the diff ID covers).
	Bytes int64
	// Entries counts index entries, Files the regular files among them.
	Entries int
	Files   int
	// NewObjects were added to the store (NewBytes of content); ReusedObjects
	// counts files whose object was already stored or appeared earlier in the
	// same layer.
	NewObjects    int
	NewBytes      int64
	ReusedObjects int
	// Warnings lists members that were skipped or trimmed (device nodes,
	// fifos, disallowed xattrs), one line each.
	Warnings []string
}

// ImportLayer unpacks one uncompressed tar layer into the store and records its
// index, verifying that the stream hashes to diffID.
//
// Step order, each step durable before the next: stream every regular file into
// tmp/ (content hashed, owner, mode and xattrs applied); verify the diff ID;
// syncfs; link the new objects into objects/ (an object never appears there
// before its data is on disk, so a crash cannot leave a truncated object that a
// later import would trust); syncfs; write the index atomically. A failure at
// any point leaves objects/ and layers/ as they were or with extra, complete
// objects that GC reclaims; rerunning the import then succeeds.
func (s *Store) ImportLayer(ctx context.Context, r io.Reader, diffID digest.Digest) (ImportStats, error) {
	var st ImportStats
	hex, err := layerHex(diffID)
	if err != nil {
		return st, fmt.Errorf("importing layer: %w", err)
	}
	if ok, err := s.HasLayer(diffID); err != nil {
		return st, fmt.Errorf("importing layer: %w", err)
	} else if ok {
		st.Present = true
		return st, nil
	}
	work, err := os.MkdirTemp(filepath.Join(s.dir, tmpDir), "import-")
	if err != nil {
		return st, fmt.Errorf("importing layer %s: %w", diffID, err)
	}
	defer os.RemoveAll(work)

	im := &importer{
		s:       s,
		work:    work,
		pending: make(map[string]string),
		buf:     make([]byte, 1<<17),
		small:   make([]byte, smallFile),
		fans:    make(map[string]bool),
		stats:   &st,
	}
	entries, err := im.unpack(ctx, r, diffID)
	if err != nil {
		return st, err
	}
	if err := durable.SyncFS(s.dir); err != nil {
		return st, layerErr(diffID, err)
	}
	if err := im.publish(); err != nil {
		return st, layerErr(diffID, err)
	}
	if err := durable.SyncFS(s.dir); err != nil {
		return st, layerErr(diffID, err)
	}
	st.Entries = len(entries)
	if err := s.writeIndex(hex, &Index{Version: indexVersion, DiffID: diffID, Entries: entries}); err != nil {
		return st, layerErr(diffID, err)
	}
	return st, nil
}

// unpack reads the layer stream into index entries, storing each regular file as an object
// candidate in the work directory, and checks that the whole stream hashes to diffID.
func (im *importer) unpack(ctx context.Context, r io.Reader, diffID digest.Digest) ([]Entry, error) {
	h := sha256.New()
	cr := &ctxReader{ctx: ctx, r: r}
	stream := io.TeeReader(cr, h)
	tr := tar.NewReader(stream)
	var entries []Entry
	links := layerLinks{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if errors.Is(err, tar.ErrInsecurePath) {
			err = nil // headerEntry applies the policy for such names
		}
		if err != nil {
			return nil, layerErr(diffID, fmt.Errorf("reading tar: %w", err))
		}
		e, warns, err := headerEntry(hdr)
		im.stats.Warnings = append(im.stats.Warnings, warns...)
		if err != nil {
			return nil, layerErr(diffID, fmt.Errorf("entry %q: %w", hdr.Name, err))
		}
		if e == nil {
			continue
		}
		if err := links.check(e); err != nil {
			return nil, layerErr(diffID, fmt.Errorf("entry %q: %w", hdr.Name, err))
		}
		if e.Type == TypeFile {
			if err := im.storeFile(e, hdr.Size, tr); err != nil {
				return nil, layerErr(diffID, fmt.Errorf("entry %q: %w", hdr.Name, err))
			}
		}
		entries = append(entries, *e)
	}
	// The diff ID covers the whole stream, including the padding after the
	// end-of-archive marker that the tar reader does not consume.
	if _, err := io.CopyBuffer(io.Discard, stream, im.buf); err != nil {
		return nil, layerErr(diffID, fmt.Errorf("reading tar: %w", err))
	}
	im.stats.Bytes = cr.n
	got := digest.NewDigest(digest.SHA256, h)
	if got != diffID {
		return nil, layerErr(diffID, fmt.Errorf("%w: stream hashes to %s", ErrDiffIDMismatch, got))
	}
	return entries, nil
}

type importer struct {
	s    *Store
	work string
	// pending maps keys of objects new to the store to their file in work.
	pending map[string]string
	buf     []byte
	small   []byte
	fans    map[string]bool // objects/ fan-out directories known to exist
	stats   *ImportStats
}

// epoch is the mtime of every object, directory and symlink the store makes.
var epoch = []unix.Timespec{{Sec: 0, Nsec: 0}, {Sec: 0, Nsec: 0}}

// smallFile is the size up to which a file is hashed in memory before any
// disk write: a file whose object already exists (the common case when an
// updated image shares most files with the installed one) then costs no I/O.
const smallFile = 1 << 20

// storeFile stores one regular file's content and metadata as an object
// candidate and fills in e.Object and e.Size.
func (im *importer) storeFile(e *Entry, size int64, r io.Reader) error {
	if size <= smallFile {
		n, err := io.ReadFull(r, im.small[:size])
		if err != nil {
			return fmt.Errorf("storing file: %w", err)
		}
		body := im.small[:n]
		key := objectKey(sha256.Sum256(body), e.Mode, e.UID, e.GID, e.Xattrs)
		e.Object, e.Size = key, int64(n)
		if known, err := im.known(key); err != nil || known {
			return err
		}
		name, err := im.writeTemp(e, bytes.NewReader(body), nil)
		if err != nil {
			return err
		}
		im.add(key, name, int64(n))
		return nil
	}
	h := sha256.New()
	name, err := im.writeTemp(e, r, h)
	if err != nil {
		return err
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	key := objectKey(sum, e.Mode, e.UID, e.GID, e.Xattrs)
	fi, err := os.Lstat(name)
	if err != nil {
		return fmt.Errorf("storing file: %w", err)
	}
	e.Object, e.Size = key, fi.Size()
	if known, err := im.known(key); err != nil || known {
		os.Remove(name)
		return err
	}
	im.add(key, name, fi.Size())
	return nil
}

// known counts a file whose object is stored already or pending from earlier
// in this layer.
func (im *importer) known(key string) (bool, error) {
	im.stats.Files++
	if _, ok := im.pending[key]; ok {
		im.stats.ReusedObjects++
		return true, nil
	}
	_, err := os.Lstat(filepath.Join(im.s.dir, objectsDir, objectRel(key)))
	switch {
	case err == nil:
		im.stats.ReusedObjects++
		return true, nil
	case !errors.Is(err, os.ErrNotExist):
		return false, fmt.Errorf("storing file: %w", err)
	}
	return false, nil
}

func (im *importer) add(key, name string, size int64) {
	im.pending[key] = name
	im.stats.NewObjects++
	im.stats.NewBytes += size
}

// writeTemp writes content (also into h when set) to a new file in the work
// directory and applies e's metadata to it.
func (im *importer) writeTemp(e *Entry, r io.Reader, h hash.Hash) (string, error) {
	f, err := os.CreateTemp(im.work, "obj-")
	if err != nil {
		return "", fmt.Errorf("storing file: %w", err)
	}
	name := f.Name()
	ok := false
	defer func() {
		f.Close()
		if !ok {
			os.Remove(name)
		}
	}()
	var w io.Writer = f
	if h != nil {
		w = io.MultiWriter(f, h)
	}
	if _, err := io.CopyBuffer(w, r, im.buf); err != nil {
		return "", fmt.Errorf("storing file: %w", err)
	}
	// Order matters: chown clears setuid/setgid and security.capability, and a
	// write after setting capabilities would clear them again.
	fd := int(f.Fd())
	if err := unix.Fchown(fd, int(e.UID), int(e.GID)); err != nil {
		return "", fmt.Errorf("storing file: chown %d:%d: %w", e.UID, e.GID, err)
	}
	if err := unix.Fchmod(fd, e.Mode); err != nil {
		return "", fmt.Errorf("storing file: chmod %o: %w", e.Mode, err)
	}
	if err := setXattrs(e.Xattrs, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }); err != nil {
		return "", fmt.Errorf("storing file: %w", err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, name, epoch, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return "", fmt.Errorf("storing file: setting mtime: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("storing file: %w", err)
	}
	ok = true
	return name, nil
}

// publish links the new objects into objects/. link(2) rather than rename(2):
// it never replaces an object that appeared meanwhile, so every existing
// hardlink to an object stays the one inode for that key.
func (im *importer) publish() error {
	keys := make([]string, 0, len(im.pending))
	for k := range im.pending {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	root := filepath.Join(im.s.dir, objectsDir)
	for _, k := range keys {
		fan := filepath.Join(root, k[:2])
		if !im.fans[fan] {
			if err := os.Mkdir(fan, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("storing object %s: %w", k, err)
			}
			im.fans[fan] = true
		}
		if err := os.Link(im.pending[k], filepath.Join(fan, k[2:])); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("storing object %s: %w", k, err)
		}
	}
	return nil
}

// setXattrs applies xattrs in name order so failures are reproducible.
func setXattrs(x map[string][]byte, set func(string, []byte) error) error {
	names := make([]string, 0, len(x))
	for k := range x {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if err := set(k, x[k]); err != nil {
			return fmt.Errorf("setting xattr %q: %w", k, err)
		}
	}
	return nil
}

// ctxReader stops a long import promptly when ctx is cancelled and counts the
// bytes read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// LayerError is an import's failure, about the layer with diff ID DiffID. It reads "layer
// <diff ID>: <Err>"; a caller that names the layer otherwise (by its blob digest) uses Err.
type LayerError struct {
	DiffID digest.Digest
	Err    error
}

func (e *LayerError) Error() string { return "layer " + e.DiffID.String() + ": " + e.Err.Error() }
func (e *LayerError) Unwrap() error { return e.Err }

func layerErr(diffID digest.Digest, err error) error { return &LayerError{DiffID: diffID, Err: err} }
