package bootloader

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// The two generations a symlink-mode boot/loader alternates between, and the name the new
// symlink is built under (and, after migrating a plain directory, where that directory goes).
const (
	gen0    = "loader.0"
	gen1    = "loader.1"
	tmpLink = "loader.tmp"
)

// GrubMenu is the file name of the generated GRUB menu inside each loader.N directory.
const GrubMenu = "grub.cfg"

// current inspects boot/loader: the generation it points to ("" when it is missing or a plain
// directory) and whether it is a plain directory.
func current(boot string) (target string, plainDir bool, err error) {
	link := loaderDir(boot)
	fi, err := os.Lstat(link)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", false, nil
	case err != nil:
		return "", false, err
	case fi.IsDir():
		return "", true, nil
	case fi.Mode()&fs.ModeSymlink == 0:
		return "", false, fmt.Errorf("%w: %s is neither a symlink nor a directory", ErrUnknownLayout, link)
	}
	target, err = os.Readlink(link)
	if err != nil {
		return "", false, err
	}
	if target != gen0 && target != gen1 {
		return "", false, fmt.Errorf("%w: %s points to %q, want %s or %s", ErrUnknownLayout, link, target, gen0, gen1)
	}
	return target, false, nil
}

func writeSymlinkSet(boot string, set []Deployment, opts Options) error {
	boot = filepath.Clean(boot)
	ps, err := prepare(boot, set, opts)
	if err != nil {
		return err
	}
	for _, p := range ps {
		if err := checkGrubArgs(p.cmdline); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInvalidSet, p.ID, err)
		}
	}
	cur, plainDir, err := current(boot)
	if err != nil {
		return err
	}
	next := gen0
	if cur == gen0 {
		next = gen1
	}

	entries := make([]fileData, 0, len(ps))
	for i := range ps {
		n := len(ps) - i
		name := "bootc-" + strconv.Itoa(n) + ".conf"
		e := ps[i].entry(name, strconv.Itoa(n), opts.BootSeparate)
		data, err := e.Marshal()
		if err != nil {
			return err
		}
		entries = append(entries, fileData{name, data})
	}
	menu, err := grubMenu(ps, opts)
	if err != nil {
		return err
	}

	if err := opts.step("sync-boot-files"); err != nil {
		return err
	}
	if err := syncBootFiles(boot, ps); err != nil {
		return err
	}

	// Whatever an interrupted run left: the generation not in use, a temporary symlink, or the
	// plain directory a migration swapped out.
	if err := opts.step("clean"); err != nil {
		return err
	}
	for _, name := range []string{gen0, gen1, tmpLink} {
		if name == cur {
			continue
		}
		if _, err := removeIfPresent(filepath.Join(boot, name)); err != nil {
			return fmt.Errorf("removing leftover: %w", err)
		}
	}

	nextDir := filepath.Join(boot, next)
	entriesDir := filepath.Join(nextDir, "entries")
	if err := opts.step("mkdir"); err != nil {
		return err
	}
	if err := mkdirFresh(nextDir); err != nil {
		return err
	}
	if err := mkdirFresh(entriesDir); err != nil {
		return err
	}
	for _, f := range entries {
		if err := opts.step("write " + f.name); err != nil {
			return err
		}
		if err := writeNewFile(filepath.Join(entriesDir, f.name), f.data); err != nil {
			return err
		}
	}
	if err := opts.step("write " + GrubMenu); err != nil {
		return err
	}
	if err := writeNewFile(filepath.Join(nextDir, GrubMenu), menu); err != nil {
		return err
	}
	if err := opts.step("sync-new"); err != nil {
		return err
	}
	for _, d := range []string{entriesDir, nextDir, boot} {
		if err := syncPath(d); err != nil {
			return err
		}
	}

	link := loaderDir(boot)
	tmp := filepath.Join(boot, tmpLink)
	if err := opts.step("link"); err != nil {
		return err
	}
	if err := os.Symlink(next, tmp); err != nil {
		return fmt.Errorf("creating symlink (does this filesystem lack symlinks? use FAT mode): %w", err)
	}
	if err := opts.step("switch"); err != nil {
		return err
	}
	if plainDir {
		// rename(2) cannot replace a non-empty directory; exchanging the two names is atomic and
		// leaves the old directory at tmpLink for removal below.
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("swapping the directory %s for a symlink: %w", link, err)
		}
	} else if err := os.Rename(tmp, link); err != nil {
		return err
	}
	if err := opts.step("sync-switch"); err != nil {
		return err
	}
	if err := syncPath(boot); err != nil {
		return err
	}
	if !opts.NoFreeze {
		if err := opts.step("checkpoint"); err != nil {
			return err
		}
		if err := checkpoint(boot); err != nil {
			return err
		}
	}

	if err := opts.step("remove-previous"); err != nil {
		return err
	}
	previous := cur
	if plainDir {
		previous = tmpLink
	}
	if previous != "" {
		if err := os.RemoveAll(filepath.Join(boot, previous)); err != nil {
			return fmt.Errorf("removing the previous entries: %w", err)
		}
		if err := opts.step("sync-removal"); err != nil {
			return err
		}
		if err := syncPath(boot); err != nil {
			return err
		}
	}
	return nil
}

type fileData struct {
	name string
	data []byte
}
