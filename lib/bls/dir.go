package bls

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"

	"gobootc.dev/lib/durable"
)

// ReadDir parses every *.conf file in dir (a loader/entries directory) and returns them in boot menu
// order. Hidden files (renameio's temporaries among them) and anything that is not a regular file or a
// symlink to one are skipped. A file that does not parse fails the whole call, naming the file: a menu
// computed without it could pick the wrong default.
func ReadDir(dir string) ([]Entry, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading boot entries: %w", err)
	}
	var entries []Entry
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".conf") || strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		if !isRegular(path, de) {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading boot entries: %w", err)
		}
		e, err := Parse(name, data)
		if err != nil {
			return nil, fmt.Errorf("reading boot entries in %s: %w", dir, err)
		}
		entries = append(entries, e)
	}
	Sort(entries)
	return entries, nil
}

// isRegular follows a symlink, as a boot loader reading the file would; a dangling one is skipped
// like any other non-file.
func isRegular(path string, de fs.DirEntry) bool {
	if de.Type()&fs.ModeSymlink == 0 {
		return de.Type().IsRegular()
	}
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// WriteFile writes e to dir/e.Name with mode 0644, atomically: the content goes to a temporary file
// in dir, is fsynced and renamed over the target, and dir is fsynced, so after a crash the boot
// loader sees the old entry or the new one, never a torn file.
func WriteFile(dir string, e *Entry) error {
	name := e.Name
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".conf") {
		return fmt.Errorf("writing boot entry %q: name must be a plain, non-hidden *.conf file name", name)
	}
	data, err := e.Marshal()
	if err != nil {
		return fmt.Errorf("writing boot entry: %w", err)
	}
	path := filepath.Join(dir, name)
	pf, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithPermissions(0o644))
	if err != nil {
		return fmt.Errorf("writing boot entry %s: %w", path, err)
	}
	defer pf.Cleanup()
	// Set the mode explicitly so the umask does not decide it. FAT (an ESP used as /boot) has no
	// per-file modes and may refuse chmod; the mount options decide there.
	if err := pf.Chmod(0o644); err != nil && !errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("writing boot entry %s: %w", path, err)
	}
	if _, err := pf.Write(data); err != nil {
		return fmt.Errorf("writing boot entry %s: %w", path, err)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("writing boot entry %s: %w", path, err)
	}
	// On FAT (an ESP) a file's first cluster and size live in its directory entry, which the
	// rename leaves for a later inode writeback: syncing the directory does not write it. A
	// power cut before that writeback leaves the name pointing at the replaced file's freed
	// clusters, and fsck then truncates the entry to nothing. Syncing the file by its new name
	// writes the entry.
	if err := durable.Sync(path); err != nil {
		return fmt.Errorf("writing boot entry %s: %w", path, err)
	}
	if err := durable.Sync(dir); err != nil {
		return fmt.Errorf("writing boot entry %s: %w", path, err)
	}
	return nil
}
