package etcmerge

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// entry is what lstat says about one path in one tree.
type entry struct {
	typ      Type
	format   uint32 // S_IFMT bits, to tell special files apart
	perm     uint32 // permission bits including setuid, setgid and sticky
	uid, gid uint32
	size     int64
	rdev     uint64
	dev, ino uint64
}

// lstatEntry returns nil, nil when path does not exist.
func lstatEntry(path string) (*entry, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if err == unix.ENOENT {
			return nil, nil
		}
		return nil, &fs.PathError{Op: "lstat", Path: path, Err: err}
	}
	return entryOf(&st), nil
}

func entryOf(st *unix.Stat_t) *entry {
	e := &entry{
		format: st.Mode & unix.S_IFMT,
		perm:   st.Mode & 0o7777,
		uid:    st.Uid,
		gid:    st.Gid,
		size:   st.Size,
		rdev:   st.Rdev,
		dev:    st.Dev,
		ino:    st.Ino,
	}
	switch e.format {
	case unix.S_IFREG:
		e.typ = TypeRegular
	case unix.S_IFDIR:
		e.typ = TypeDir
	case unix.S_IFLNK:
		e.typ = TypeSymlink
	default:
		e.typ = TypeSpecial
	}
	return e
}

// describe names the entry's type precisely, for warnings about special files.
func (e *entry) describe() string {
	switch e.format {
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	}
	return e.typ.String()
}

const noFollow = unix.O_NOFOLLOW | unix.O_CLOEXEC

func readNames(dir string) ([]string, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|noFollow, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	return names, nil
}

// openRegular opens path for reading without following a symlink and checks that it is
// still a regular file.
func openRegular(path string) (*os.File, *unix.Stat_t, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, nil, fmt.Errorf("%s: %w: now a symlink", path, ErrChanged)
		}
		return nil, nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, nil, &fs.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w: no longer a regular file", path, ErrChanged)
	}
	return f, &st, nil
}

// sameContent compares two files byte for byte.
func sameContent(a, b string, bufA, bufB []byte) (bool, error) {
	fa, sa, err := openRegular(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, sb, err := openRegular(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	if sa.Size != sb.Size {
		return false, nil
	}
	for {
		na, errA := io.ReadFull(fa, bufA)
		nb, errB := io.ReadFull(fb, bufB)
		if !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		endA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		endB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		switch {
		case errA != nil && !endA:
			return false, fmt.Errorf("reading %s: %w", a, errA)
		case errB != nil && !endB:
			return false, fmt.Errorf("reading %s: %w", b, errB)
		case endA || endB:
			return endA == endB, nil
		}
	}
}

type xattr struct {
	name  string
	value []byte
}

// readXattrs reads all extended attributes through list and get, which address one file
// either by path (without following symlinks) or by descriptor.
func readXattrs(what string, list func([]byte) (int, error), get func(string, []byte) (int, error)) ([]xattr, error) {
	names, err := grow(func(b []byte) (int, error) { return list(b) })
	if err != nil {
		if err == unix.ENOTSUP {
			return nil, nil // no xattr support: nothing to read or lose
		}
		return nil, fmt.Errorf("listing xattrs of %s: %w", what, err)
	}
	if len(names) == 0 {
		return nil, nil
	}
	var out []xattr
	for _, name := range strings.Split(strings.TrimSuffix(string(names), "\x00"), "\x00") {
		v, err := grow(func(b []byte) (int, error) { return get(name, b) })
		if err != nil {
			if err == unix.ENODATA {
				continue // removed since the listing
			}
			return nil, fmt.Errorf("reading xattr %s of %s: %w", name, what, err)
		}
		out = append(out, xattr{name: name, value: v})
	}
	return out, nil
}

// grow calls f with a buffer large enough for its answer; f follows the xattr syscall
// convention of reporting the size needed when given an empty buffer.
func grow(f func([]byte) (int, error)) ([]byte, error) {
	for {
		n, err := f(nil)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n)
		n, err = f(buf)
		if err == unix.ERANGE {
			continue // grew in between
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func pathXattrs(path string) ([]xattr, error) {
	return readXattrs(path,
		func(b []byte) (int, error) { return unix.Llistxattr(path, b) },
		func(name string, b []byte) (int, error) { return unix.Lgetxattr(path, name, b) })
}

func fdXattrs(fd int, path string) ([]xattr, error) {
	return readXattrs(path,
		func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

func sameXattrs(a, b []xattr) bool {
	if len(a) != len(b) {
		return false
	}
	m := make(map[string][]byte, len(a))
	for _, x := range a {
		m[x.name] = x.value
	}
	for _, x := range b {
		v, ok := m[x.name]
		if !ok || !bytes.Equal(v, x.value) {
			return false
		}
	}
	return true
}
