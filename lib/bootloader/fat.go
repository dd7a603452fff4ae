package bootloader

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/google/renameio/v2"

	"gobootc.dev/lib/bls"
	"gobootc.dev/lib/durable"
	"gobootc.dev/lib/layout"
)

// fatPrefix starts the name of every entry file bootc owns in FAT mode; renameio's temporaries
// for them start with "." + fatPrefix.
const fatPrefix = "bootc-"

// fatID is the entry of one deployment without the counter and ".conf": stable across sets, so
// a rewrite replaces the file (or, when the counter changes, removes the old name as stale).
func fatID(stateroot, id string) string {
	return fatPrefix + stateroot + "-" + id
}

// writeFATSet writes set in FAT mode. Step order: name the entry files; sync the boot files;
// make the entries directory; clean what an interrupted run left; arm a GRUB trial; write the
// entries, default first; the GRUB menu; remove the entries that left the set; sync; end a GRUB
// trial the set no longer has.
func writeFATSet(boot string, set []Deployment, opts Options) error {
	boot = filepath.Clean(boot)
	ps, err := prepare(boot, set, opts)
	if err != nil {
		return err
	}
	names, err := fatNames(ps)
	if err != nil {
		return err
	}
	link := layout.Loader(boot)
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%w: %s is a symlink; FAT mode keeps entries in a plain directory", ErrUnknownLayout, link)
	}
	dir := layout.LoaderEntries(link)

	if err := opts.step("sync-boot-files"); err != nil {
		return err
	}
	if err := syncBootFiles(boot, ps); err != nil {
		return err
	}
	if err := makeFATEntries(boot, link, dir, opts); err != nil {
		return err
	}
	existing, gen, err := scanFAT(dir)
	if err != nil {
		return err
	}
	if err := cleanFAT(dir, existing, opts); err != nil {
		return err
	}
	if err := armGrub(boot, ps, opts); err != nil {
		return err
	}
	keep, err := writeFATEntries(dir, ps, names, gen+1, opts)
	if err != nil {
		return err
	}
	if err := writeFATMenu(link, ps, opts); err != nil {
		return err
	}
	if err := removeStaleFAT(dir, existing, keep, opts); err != nil {
		return err
	}
	if err := opts.step("sync"); err != nil {
		return err
	}
	if err := durable.Sync(dir); err != nil {
		return err
	}
	return disarmGrub(boot, ps, opts)
}

// fatNames are the entry file names of a set, refused when FAT cannot hold them apart.
func fatNames(ps []prepared) ([]string, error) {
	names := make([]string, len(ps))
	byFold := map[string]int{}
	for i := range ps {
		names[i] = ps[i].fileName(fatID(ps[i].Stateroot, ps[i].ID))
		if len(names[i]) > 255 {
			return nil, fmt.Errorf("%w: entry file name %s is longer than FAT allows", ErrInvalidSet, names[i])
		}
		// FAT compares names without case, and '-' joins stateroot and id ambiguously.
		fold := strings.ToLower(names[i])
		if j, dup := byFold[fold]; dup {
			return nil, fmt.Errorf("%w: deployments %d and %d both need the entry file %s", ErrInvalidSet, j, i, names[i])
		}
		byFold[fold] = i
	}
	return names, nil
}

// makeFATEntries makes the entries directory dir under link, durably.
func makeFATEntries(boot, link, dir string, opts Options) error {
	if err := opts.step("mkdir"); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{link, boot} {
		if err := durable.Sync(d); err != nil {
			return err
		}
	}
	return nil
}

// cleanFAT removes the temporaries an interrupted write of bootc's entries left.
func cleanFAT(dir string, existing []string, opts Options) error {
	if err := opts.step("clean"); err != nil {
		return err
	}
	for _, name := range existing {
		if strings.HasPrefix(name, "."+fatPrefix) {
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("removing leftover: %w", err)
			}
		}
	}
	return nil
}

// writeFATEntries writes the entries of generation gen and returns their file names. The new
// default goes first: from then on it sorts above every old entry, so the default is only ever
// the old one or the new one. The rest follow in order; removals come last so the menu never
// shrinks below the new set.
func writeFATEntries(dir string, ps []prepared, names []string, gen uint64, opts Options) (map[string]bool, error) {
	keep := map[string]bool{}
	for i := range ps {
		n := len(ps) - i
		e := ps[i].entry(names[i], strconv.FormatUint(gen, 10)+"."+strconv.Itoa(n), true)
		if err := opts.step("write " + e.Name); err != nil {
			return nil, err
		}
		if err := bls.WriteFile(dir, &e); err != nil {
			return nil, err
		}
		keep[e.Name] = true
	}
	return keep, nil
}

// writeFATMenu writes the menu GRUB (a generic image booted through BIOS) reads the same set
// from, next to the entries; it switches with one rename, once the new entries are all there.
func writeFATMenu(link string, ps []prepared, opts Options) error {
	menuOpts := opts
	menuOpts.BootSeparate = true
	menu, err := grubMenu(ps, menuOpts)
	if err != nil {
		return err
	}
	if err := opts.step("write " + layout.GrubMenu); err != nil {
		return err
	}
	path := layout.LoaderGrubMenu(link)
	if err := renameio.WriteFile(path, menu, 0o644); err != nil {
		return fmt.Errorf("writing the GRUB menu: %w", err)
	}
	// As for the entries (bls.WriteFile): on FAT the renamed file's size and first cluster reach
	// the disk only when the file is synced by its new name.
	if err := durable.Sync(path); err != nil {
		return fmt.Errorf("writing the GRUB menu: %w", err)
	}
	if err := durable.Sync(filepath.Dir(path)); err != nil {
		return fmt.Errorf("writing the GRUB menu: %w", err)
	}
	return nil
}

// removeStaleFAT removes bootc's entries that are not in keep, the ones that left the set.
func removeStaleFAT(dir string, existing []string, keep map[string]bool, opts Options) error {
	for _, name := range existing {
		if !strings.HasPrefix(name, fatPrefix) || !strings.HasSuffix(name, ".conf") || keep[name] {
			continue
		}
		if err := opts.step("remove " + name); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing stale entry: %w", err)
		}
	}
	return nil
}

// scanFAT lists the directory and finds the highest generation among bootc's entries (the
// leading number of their version). Entries that do not parse count for nothing here; if they
// are bootc's they are rewritten or removed anyway.
func scanFAT(dir string) (names []string, gen uint64, err error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, 0, err
	}
	for _, de := range des {
		name := de.Name()
		names = append(names, name)
		if !strings.HasPrefix(name, fatPrefix) || !strings.HasSuffix(name, ".conf") || !de.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, 0, err
		}
		e, err := bls.Parse(name, data)
		if err != nil {
			continue
		}
		lead, _, _ := strings.Cut(e.Version, ".")
		if g, err := strconv.ParseUint(lead, 10, 64); err == nil && g > gen {
			gen = g
		}
	}
	return names, gen, nil
}
