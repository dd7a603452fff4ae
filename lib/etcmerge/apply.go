package etcmerge

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/durable"
)

// Apply writes the result of plan to output, which must not exist yet; its parent must.
// The tree is built in a hidden sibling directory, flushed to disk and renamed into place,
// so a crash leaves either no output or a complete one (plus possibly a stale sibling
// named .<output>.merge-*). A plan with conflicts is refused with a *ConflictError.
//
// Entries are copied as they are at the time of Apply, keeping mode, owner, xattrs
// (security.capability included) and timestamps; symlinks stay symlinks, and files that
// share an inode in their source tree share one in the output. A source entry whose type
// changed since Plan fails the apply with ErrChanged.
func Apply(plan *MergePlan, output string) error {
	if len(plan.Conflicts) > 0 {
		return &ConflictError{Conflicts: plan.Conflicts}
	}
	abs, err := filepath.Abs(output)
	if err != nil {
		return fmt.Errorf("applying etc merge: %w", err)
	}
	for _, root := range []string{plan.Pristine, plan.Current, plan.New} {
		r, err := filepath.Abs(root)
		if err != nil {
			return fmt.Errorf("applying etc merge: %w", err)
		}
		if abs == r || strings.HasPrefix(abs, r+string(filepath.Separator)) {
			return fmt.Errorf("applying etc merge: output %s lies inside the source tree %s", output, root)
		}
	}
	if _, err := os.Lstat(abs); err == nil {
		return fmt.Errorf("applying etc merge: %s: %w", output, ErrOutputExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("applying etc merge: %w", err)
	}
	parent := filepath.Dir(abs)
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(abs)+".merge-")
	if err != nil {
		return fmt.Errorf("applying etc merge: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	w := &writer{plan: plan, out: tmp, links: map[linkKey]string{}}
	if err := w.build(); err != nil {
		return fmt.Errorf("applying etc merge: %w", err)
	}
	if err := durable.SyncFS(tmp); err != nil {
		return fmt.Errorf("applying etc merge: %w", err)
	}
	if err := renameNoReplace(tmp, abs); err != nil {
		return fmt.Errorf("applying etc merge: %w", err)
	}
	done = true
	if err := durable.Sync(parent); err != nil {
		return fmt.Errorf("applying etc merge: %w", err)
	}
	return nil
}

type linkKey struct {
	from     Source
	dev, ino uint64
}

type writer struct {
	plan  *MergePlan
	out   string
	links map[linkKey]string // source inode with several links -> first output path
	dirs  []Action
}

func (w *writer) source(a Action) (string, error) {
	switch a.From {
	case FromNew:
		return filepath.Join(w.plan.New, a.Path), nil
	case FromCurrent:
		return filepath.Join(w.plan.Current, a.Path), nil
	}
	return "", fmt.Errorf("%s: unknown source %v", a.Path, a.From)
}

func (w *writer) build() error {
	for _, a := range w.plan.Actions {
		if a.From == FromNone {
			continue
		}
		if a.Path != "." && !filepath.IsLocal(a.Path) {
			return fmt.Errorf("%q: path is not relative to the tree", a.Path)
		}
		src, err := w.source(a)
		if err != nil {
			return err
		}
		dst := filepath.Join(w.out, a.Path)
		switch a.Type {
		case TypeDir:
			if a.Path != "." {
				if err := os.Mkdir(dst, 0o700); err != nil {
					return err
				}
			}
			w.dirs = append(w.dirs, a)
		case TypeRegular:
			err = w.file(a, src, dst)
		case TypeSymlink:
			err = copySymlink(src, dst)
		default:
			err = fmt.Errorf("%s: cannot copy a %s", a.Path, a.Type)
		}
		if err != nil {
			return err
		}
	}
	// Children first, so that their creation does not disturb the parents' timestamps and
	// a read-only directory mode comes last.
	for i := len(w.dirs) - 1; i >= 0; i-- {
		a := w.dirs[i]
		src, _ := w.source(a)
		if err := copyDirMeta(src, filepath.Join(w.out, a.Path)); err != nil {
			return err
		}
	}
	return nil
}

func (w *writer) file(a Action, src, dst string) error {
	in, st, err := openRegular(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if st.Nlink > 1 {
		key := linkKey{a.From, st.Dev, st.Ino}
		if first, ok := w.links[key]; ok {
			return os.Link(filepath.Join(w.out, first), dst)
		}
		w.links[key] = a.Path
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	if err := setMeta(int(out.Fd()), int(in.Fd()), dst, src, st); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// setMeta gives the open file dfd the owner, mode, xattrs and timestamps of the open
// file sfd. The order matters: chown clears setuid/setgid bits and security.capability,
// so both are set after it.
func setMeta(dfd, sfd int, dst, src string, st *unix.Stat_t) error {
	if err := unix.Fchown(dfd, int(st.Uid), int(st.Gid)); err != nil {
		return &fs.PathError{Op: "chown", Path: dst, Err: err}
	}
	if err := unix.Fchmod(dfd, st.Mode&0o7777); err != nil {
		return &fs.PathError{Op: "chmod", Path: dst, Err: err}
	}
	want, err := fdXattrs(sfd, src)
	if err != nil {
		return err
	}
	have, err := fdXattrs(dfd, dst)
	if err != nil {
		return err
	}
	if err := syncXattrs(dst, want, have,
		func(name string, v []byte) error { return unix.Fsetxattr(dfd, name, v, 0) },
		func(name string) error { return unix.Fremovexattr(dfd, name) }); err != nil {
		return err
	}
	return setTimes(dst, st)
}

// syncXattrs makes the destination's xattrs exactly want: set what differs, drop what the
// filesystem added on its own (inherited ACLs, for one).
func syncXattrs(dst string, want, have []xattr, set func(string, []byte) error, remove func(string) error) error {
	for _, x := range want {
		if err := set(x.name, x.value); err != nil {
			return fmt.Errorf("setting xattr %s on %s: %w", x.name, dst, err)
		}
	}
	keep := make(map[string]bool, len(want))
	for _, x := range want {
		keep[x.name] = true
	}
	for _, x := range have {
		if !keep[x.name] {
			if err := remove(x.name); err != nil && err != unix.ENODATA {
				return fmt.Errorf("removing xattr %s from %s: %w", x.name, dst, err)
			}
		}
	}
	return nil
}

func setTimes(dst string, st *unix.Stat_t) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &fs.PathError{Op: "utimensat", Path: dst, Err: err}
	}
	return nil
}

func copySymlink(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &fs.PathError{Op: "lstat", Path: src, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return fmt.Errorf("%s: %w: no longer a symlink", src, ErrChanged)
	}
	target, err := readlink(src)
	if err != nil {
		return err
	}
	if err := os.Symlink(target, dst); err != nil {
		return err
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return &fs.PathError{Op: "lchown", Path: dst, Err: err}
	}
	want, err := pathXattrs(src)
	if err != nil {
		return err
	}
	if len(want) > 0 {
		if err := syncXattrs(dst, want, nil,
			func(name string, v []byte) error { return unix.Lsetxattr(dst, name, v, 0) },
			func(name string) error { return unix.Lremovexattr(dst, name) }); err != nil {
			return err
		}
	}
	return setTimes(dst, &st)
}

func copyDirMeta(src, dst string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_DIRECTORY|noFollow, 0)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("%s: %w: no longer a directory", src, ErrChanged)
		}
		return err
	}
	defer in.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(in.Fd()), &st); err != nil {
		return &fs.PathError{Op: "fstat", Path: src, Err: err}
	}
	out, err := os.OpenFile(dst, os.O_RDONLY|unix.O_DIRECTORY|noFollow, 0)
	if err != nil {
		return err
	}
	defer out.Close()
	return setMeta(int(out.Fd()), int(in.Fd()), dst, src, &st)
}

// renameNoReplace renames without ever replacing a destination that appeared meanwhile
// (a plain rename would silently replace an empty directory).
func renameNoReplace(from, to string) error {
	err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
	switch err {
	case nil:
		return nil
	case unix.EEXIST:
		return fmt.Errorf("%s: %w", to, ErrOutputExists)
	case unix.EINVAL, unix.ENOSYS:
		// The filesystem cannot do it atomically; check, then rename.
		if _, err := os.Lstat(to); err == nil {
			return fmt.Errorf("%s: %w", to, ErrOutputExists)
		}
		return os.Rename(from, to)
	}
	return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
}
