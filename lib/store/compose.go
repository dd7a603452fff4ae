package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// linkat is a variable so tests can simulate a full link count.
var linkat = unix.Linkat

// Compose builds the root tree of the given layers (lowest first) in dest, an
// existing empty directory on the store's filesystem. Regular files are
// hardlinks to objects, so they share inodes with the store and with every
// other tree built from it. On error dest may hold a partial tree; the caller
// removes it.
//
// Step order: merge the indexes in memory (whiteouts, replacements, hardlink
// resolution, refusal of paths through symlinks); then create the tree depth
// first with *at calls relative to directory descriptors opened with
// O_NOFOLLOW. Directories are created 0700 and get their owner, mode, xattrs
// and mtime only after their children exist, so a 0555 directory still gets
// its children and a setgid directory does not leak its group onto them.
func (s *Store) Compose(ctx context.Context, layers []digest.Digest, dest string) error {
	t := newTree()
	for _, d := range layers {
		ix, err := s.readIndex(d)
		if err != nil {
			return fmt.Errorf("composing: %w", err)
		}
		if err := t.apply(ix); err != nil {
			return fmt.Errorf("composing: %w", err)
		}
	}

	df, err := os.OpenFile(dest, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("composing: opening destination: %w", err)
	}
	defer df.Close()
	if names, err := df.Readdirnames(1); err != nil && err != io.EOF {
		return fmt.Errorf("composing: reading destination: %w", err)
	} else if len(names) > 0 {
		return fmt.Errorf("composing into %s: %w", dest, ErrDestNotEmpty)
	}
	objfd, err := unix.Open(filepath.Join(s.dir, objectsDir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("composing: opening objects: %w", err)
	}
	defer unix.Close(objfd)

	m := &materializer{ctx: ctx, objfd: objfd}
	destfd := int(df.Fd())
	if err := m.fill(destfd, t.root); err != nil {
		return fmt.Errorf("composing: %w", err)
	}
	if err := m.dirMeta(destfd, t.root); err != nil {
		return fmt.Errorf("composing: %w", err)
	}
	if err := unix.Futimes(destfd, []unix.Timeval{{}, {}}); err != nil {
		return fmt.Errorf("composing: setting mtime of destination: %w", err)
	}
	return nil
}

type materializer struct {
	ctx   context.Context
	objfd int
}

func entryErr(n *node, err error) error {
	if n.layer == "" { // the root, when no layer describes it
		return fmt.Errorf("entry %q: %w", n.e.Path, err)
	}
	return fmt.Errorf("layer %s: entry %q: %w", n.layer, n.e.Path, err)
}

// fill creates the children of directory n inside the directory open as dirfd.
func (m *materializer) fill(dirfd int, n *node) error {
	if err := m.ctx.Err(); err != nil {
		return err
	}
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := n.children[name]
		var err error
		switch c.e.Type {
		case TypeDir:
			err = m.dir(dirfd, name, c)
		case TypeFile:
			err = m.file(dirfd, name, c)
		case TypeSymlink:
			err = m.symlink(dirfd, name, c)
		default:
			err = entryErr(c, fmt.Errorf("unexpected type %q in merged tree", c.e.Type))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *materializer) dir(parent int, name string, n *node) error {
	if err := unix.Mkdirat(parent, name, 0o700); err != nil {
		return entryErr(n, fmt.Errorf("creating directory: %w", err))
	}
	fd, err := unix.Openat(parent, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return entryErr(n, fmt.Errorf("opening directory: %w", err))
	}
	defer unix.Close(fd)
	if err := m.fill(fd, n); err != nil {
		return err
	}
	if err := m.dirMeta(fd, n); err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(parent, name, epoch, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryErr(n, fmt.Errorf("setting mtime: %w", err))
	}
	return nil
}

// dirMeta applies a directory's metadata, chown first because it clears
// set-id bits.
func (m *materializer) dirMeta(fd int, n *node) error {
	if err := unix.Fchown(fd, int(n.e.UID), int(n.e.GID)); err != nil {
		return entryErr(n, fmt.Errorf("chown %d:%d: %w", n.e.UID, n.e.GID, err))
	}
	if err := unix.Fchmod(fd, n.e.Mode); err != nil {
		return entryErr(n, fmt.Errorf("chmod %o: %w", n.e.Mode, err))
	}
	if err := setXattrs(n.e.Xattrs, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) }); err != nil {
		return entryErr(n, err)
	}
	return nil
}

func (m *materializer) file(dirfd int, name string, n *node) error {
	err := linkat(m.objfd, objectRel(n.e.Object), dirfd, name, 0)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EMLINK):
		// The object reached the filesystem's link limit (65000 on ext4):
		// this tree gets its own copy instead.
		if err := m.copyObject(dirfd, name, n); err != nil {
			return entryErr(n, fmt.Errorf("copying object %s: %w", n.e.Object, err))
		}
		return nil
	case errors.Is(err, unix.ENOENT):
		return entryErr(n, fmt.Errorf("object %s missing from the store", n.e.Object))
	case errors.Is(err, unix.EXDEV):
		return entryErr(n, fmt.Errorf("linking object: destination is not on the store's filesystem"))
	}
	return entryErr(n, fmt.Errorf("linking object %s: %w", n.e.Object, err))
}

func (m *materializer) copyObject(dirfd int, name string, n *node) error {
	src, err := unix.Openat(m.objfd, objectRel(n.e.Object), unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	sf := os.NewFile(uintptr(src), n.e.Object)
	defer sf.Close()
	dst, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	df := os.NewFile(uintptr(dst), name)
	defer df.Close()
	if _, err := io.Copy(df, sf); err != nil {
		return err
	}
	if err := unix.Fchown(dst, int(n.e.UID), int(n.e.GID)); err != nil {
		return err
	}
	if err := unix.Fchmod(dst, n.e.Mode); err != nil {
		return err
	}
	if err := setXattrs(n.e.Xattrs, func(k string, v []byte) error { return unix.Fsetxattr(dst, k, v, 0) }); err != nil {
		return err
	}
	if err := unix.Futimes(dst, []unix.Timeval{{}, {}}); err != nil {
		return err
	}
	return df.Close()
}

func (m *materializer) symlink(dirfd int, name string, n *node) error {
	if err := unix.Symlinkat(n.e.Link, dirfd, name); err != nil {
		return entryErr(n, fmt.Errorf("creating symlink: %w", err))
	}
	if err := unix.Fchownat(dirfd, name, int(n.e.UID), int(n.e.GID), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryErr(n, fmt.Errorf("chown %d:%d: %w", n.e.UID, n.e.GID, err))
	}
	if len(n.e.Xattrs) > 0 {
		// There is no fsetxattrat on older kernels; the /proc path names the
		// directory we hold open, and lsetxattr does not follow the link.
		p := "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
		err := setXattrs(n.e.Xattrs, func(k string, v []byte) error {
			if strings.HasPrefix(k, "user.") {
				return nil // the kernel refuses user.* on symlinks
			}
			return unix.Lsetxattr(p, k, v, 0)
		})
		if err != nil {
			return entryErr(n, err)
		}
	}
	if err := unix.UtimesNanoAt(dirfd, name, epoch, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryErr(n, fmt.Errorf("setting mtime: %w", err))
	}
	return nil
}
