package rootsetup

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"gobootc.dev/lib/durable"
)

// copyEtc copies the image's pristine /etc into a deployment's missing writable /etc. It copies
// into a temporary sibling and renames it into place, so an interrupted first boot copies again
// rather than booting with half an /etc.
func copyEtc(src, dst string) error {
	tmp := dst + ".bootc-tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("removing a leftover %s: %w", tmp, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(dst), err)
	}
	if err := copyTree(src, tmp); err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	// One sync for the whole tree: a per-file fsync is slow and buys nothing before the rename.
	if err := durable.SyncFS(tmp); err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return nil
}

// copyTree copies directories, regular files, symbolic links, device nodes, fifos and sockets
// with their owners, modes, times and extended attributes. Hard links become separate files.
func copyTree(src, dst string) error {
	type dirTimes struct {
		path  string
		mtime time.Time
	}
	var dirs []dirTimes
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		fi, err := os.Lstat(path)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: no ownership information", path)
		}
		switch mode := fi.Mode(); {
		case mode.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
			dirs = append(dirs, dirTimes{target, fi.ModTime()})
		case mode.IsRegular():
			if err := copyFile(path, target); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			return os.Lchown(target, int(st.Uid), int(st.Gid))
		case mode&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket) != 0:
			if err := syscall.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return fmt.Errorf("creating %s: %w", target, err)
			}
		default:
			return fmt.Errorf("%s: unsupported file type %s", path, mode.Type())
		}
		if err := os.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		// After chown, which clears set-id bits.
		if err := syscall.Chmod(target, st.Mode&0o7777); err != nil {
			return fmt.Errorf("setting the mode of %s: %w", target, err)
		}
		if err := copyXattrs(path, target); err != nil {
			return err
		}
		if !fi.IsDir() {
			return os.Chtimes(target, fi.ModTime(), fi.ModTime())
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Directory times last: creating their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirs[i].path, dirs[i].mtime, dirs[i].mtime); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, in)
	return errors.Join(cerr, out.Close())
}

// copyXattrs copies the extended attributes of a file or directory (an SELinux label, file
// capabilities). The standard library has no l-variants, so symbolic links keep none.
func copyXattrs(src, dst string) error {
	size, err := syscall.Listxattr(src, nil)
	if errors.Is(err, syscall.ENOTSUP) || size == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing extended attributes of %s: %w", src, err)
	}
	buf := make([]byte, size)
	n, err := syscall.Listxattr(src, buf)
	if err != nil {
		return fmt.Errorf("listing extended attributes of %s: %w", src, err)
	}
	for _, name := range splitNul(buf[:n]) {
		vsize, err := syscall.Getxattr(src, name, nil)
		if err != nil {
			return fmt.Errorf("reading attribute %s of %s: %w", name, src, err)
		}
		val := make([]byte, vsize)
		vn, err := syscall.Getxattr(src, name, val)
		if err != nil {
			return fmt.Errorf("reading attribute %s of %s: %w", name, src, err)
		}
		if err := syscall.Setxattr(dst, name, val[:vn], 0); err != nil {
			return fmt.Errorf("setting attribute %s on %s: %w", name, dst, err)
		}
	}
	return nil
}

func splitNul(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			if i > start {
				out = append(out, string(b[start:i]))
			}
			start = i + 1
		}
	}
	return out
}
