package bootloader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/durable"
)

// The freeze ioctls, _IOWR('X', 119/120, int); the encoding is the same on every Linux
// architecture, and x/sys does not export them.
const (
	ioctlFIFREEZE = 0xc0045877
	ioctlFITHAW   = 0xc0045878
)

func isFAT(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", path, err)
	}
	switch int64(st.Type) {
	case unix.MSDOS_SUPER_MAGIC, unix.EXFAT_SUPER_MAGIC:
		return true, nil
	}
	return false, nil
}

// syncBootFiles makes the kernels and initramfs images of a set durable, with every directory
// between them and boot, so that no entry made durable later can point at a file that a power
// cut would lose.
func syncBootFiles(boot string, set []prepared) error {
	done := map[string]bool{}
	for _, p := range set {
		for _, rel := range []string{p.Kernel, p.Initrd} {
			if rel == "" {
				continue
			}
			path := filepath.Join(boot, rel)
			for !done[path] {
				done[path] = true
				if err := durable.Sync(path); err != nil {
					return err
				}
				if path == boot || !strings.HasPrefix(path, boot+string(filepath.Separator)) {
					break
				}
				path = filepath.Dir(path)
			}
		}
	}
	return nil
}

// checkpoint writes the filesystem's journal back to its home locations by freezing and at once
// thawing it: boot loaders read ext4 and xfs without replaying the journal. When freezing is
// refused (no CAP_SYS_ADMIN, a filesystem without freeze support, already frozen by someone
// else) syncfs is the best left.
func checkpoint(boot string) error {
	f, err := os.Open(boot)
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := unix.IoctlSetInt(fd, ioctlFIFREEZE, 0); err != nil {
		return durable.SyncFS(boot)
	}
	if err := unix.IoctlSetInt(fd, ioctlFITHAW, 0); err != nil {
		return fmt.Errorf("thawing the filesystem of %s (it stays frozen until `fsfreeze -u`): %w", boot, err)
	}
	return nil
}

// writeNewFile creates path, which must not exist, with data, and fsyncs it. The caller fsyncs
// the directory.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	// The umask must not decide what the boot loader tooling can read.
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(data)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return durable.Close(f)
}

// mkdirFresh creates dir with mode 0755 whatever the umask.
func mkdirFresh(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// removeIfPresent removes path (a tree, a file or a symlink) and reports whether it existed.
func removeIfPresent(path string) (bool, error) {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err := os.RemoveAll(path); err != nil {
		return true, err
	}
	return true, nil
}
