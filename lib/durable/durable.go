// Package durable makes what was written survive a power cut: fsync of a file being written,
// fsync of a file or directory by name, and syncfs of a whole filesystem.
//
// A rename or a new directory entry is durable only once its directory is synced; a file's
// content only once the file is. Syncing a whole filesystem once is far cheaper than syncing
// each of the thousands of files a layer or an /etc tree holds, and covers their directories.
package durable

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Close fsyncs a file that was written through f, then closes it. The file is closed even when
// the sync fails; the first error is returned.
func Close(f *os.File) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", f.Name(), err)
	}
	return f.Close()
}

// Sync fsyncs the file or directory at path. For a directory this makes the entries created,
// renamed or removed in it durable.
func Sync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", path, err)
	}
	return nil
}

// SyncFS flushes the whole filesystem holding the directory dir.
func SyncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncing the filesystem of %s: %w", dir, err)
	}
	return nil
}
