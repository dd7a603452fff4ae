package bootloader

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/durable"
	"gobootc.dev/lib/layout"
)

// The two generations a symlink-mode boot/loader alternates between, and the name the new
// symlink is built under (and, after migrating a plain directory, where that directory goes).
const (
	gen0    = "loader.0"
	gen1    = "loader.1"
	tmpLink = "loader.tmp"
)

// current inspects boot/loader: the generation it points to ("" when it is missing or a plain
// directory) and whether it is a plain directory.
func current(boot string) (target string, plainDir bool, err error) {
	link := layout.Loader(boot)
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

// writeSymlinkSet writes set in symlink mode. Step order: render the entries and the menu; sync
// the boot files; clean what an interrupted run left; fill the unused generation; arm a GRUB
// trial; switch boot/loader to it; end a GRUB trial the set no longer has; remove the previous
// generation.
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
	entries, menu, err := renderSymlinkSet(ps, opts)
	if err != nil {
		return err
	}
	if err := opts.step("sync-boot-files"); err != nil {
		return err
	}
	if err := syncBootFiles(boot, ps); err != nil {
		return err
	}
	if err := cleanGenerations(boot, cur, opts); err != nil {
		return err
	}
	if err := fillGeneration(boot, next, entries, menu, opts); err != nil {
		return err
	}
	if err := armGrub(boot, ps, opts); err != nil {
		return err
	}
	if err := switchLoader(boot, next, plainDir, opts); err != nil {
		return err
	}
	if err := disarmGrub(boot, ps, opts); err != nil {
		return err
	}
	return removePrevious(boot, cur, plainDir, opts)
}

// renderSymlinkSet makes the entry files (bootc-N.conf, the default with the highest N) and the
// GRUB menu of a set.
func renderSymlinkSet(ps []prepared, opts Options) ([]fileData, []byte, error) {
	entries := make([]fileData, 0, len(ps))
	for i := range ps {
		n := len(ps) - i
		name := ps[i].fileName("bootc-" + strconv.Itoa(n))
		e := ps[i].entry(name, strconv.Itoa(n), opts.BootSeparate)
		data, err := e.Marshal()
		if err != nil {
			return nil, nil, err
		}
		entries = append(entries, fileData{name, data})
	}
	menu, err := grubMenu(ps, opts)
	if err != nil {
		return nil, nil, err
	}
	return entries, menu, nil
}

// cleanGenerations removes whatever an interrupted run left: the generation not in use, a
// temporary symlink, or the plain directory a migration swapped out.
func cleanGenerations(boot, cur string, opts Options) error {
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
	return nil
}

// fillGeneration writes the entries and the GRUB menu into the fresh directory boot/next and
// fsyncs them, with every directory up to boot.
func fillGeneration(boot, next string, entries []fileData, menu []byte, opts Options) error {
	nextDir := filepath.Join(boot, next)
	entriesDir := layout.LoaderEntries(nextDir)
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
	if err := opts.step("write " + layout.GrubMenu); err != nil {
		return err
	}
	if err := writeNewFile(layout.LoaderGrubMenu(nextDir), menu); err != nil {
		return err
	}
	if err := opts.step("sync-new"); err != nil {
		return err
	}
	for _, d := range []string{entriesDir, nextDir, boot} {
		if err := durable.Sync(d); err != nil {
			return err
		}
	}
	return nil
}

// switchLoader points boot/loader at next with one rename (one exchange for a plain
// directory), the instant the boot loader switches, and makes the switch durable.
func switchLoader(boot, next string, plainDir bool, opts Options) error {
	link := layout.Loader(boot)
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
		// leaves the old directory at tmpLink for removePrevious.
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE); err != nil {
			return fmt.Errorf("swapping the directory %s for a symlink: %w", link, err)
		}
	} else if err := os.Rename(tmp, link); err != nil {
		return err
	}
	if err := opts.step("sync-switch"); err != nil {
		return err
	}
	if err := durable.Sync(boot); err != nil {
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
	return nil
}

// removePrevious removes what the switch left behind: the generation cur, or the plain
// directory a migration swapped out.
func removePrevious(boot, cur string, plainDir bool, opts Options) error {
	if err := opts.step("remove-previous"); err != nil {
		return err
	}
	previous := cur
	if plainDir {
		previous = tmpLink
	}
	if previous == "" {
		return nil
	}
	if err := os.RemoveAll(filepath.Join(boot, previous)); err != nil {
		return fmt.Errorf("removing the previous entries: %w", err)
	}
	if err := opts.step("sync-removal"); err != nil {
		return err
	}
	return durable.Sync(boot)
}

type fileData struct {
	name string
	data []byte
}
