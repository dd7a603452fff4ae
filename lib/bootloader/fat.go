package bootloader

import (
	"errors"
	"fmt"
	"github.com/google/renameio/v2"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gobootc.dev/lib/bls"
)

// fatPrefix starts the name of every entry file bootc owns in FAT mode; renameio's temporaries
// for them start with "." + fatPrefix.
const fatPrefix = "bootc-"

// fatName is the entry file of one deployment: stable across sets, so a rewrite replaces it.
func fatName(stateroot, id string) string {
	return fatPrefix + stateroot + "-" + id + ".conf"
}

func writeFATSet(boot string, set []Deployment, opts Options) error {
	boot = filepath.Clean(boot)
	ps, err := prepare(boot, set, opts)
	if err != nil {
		return err
	}
	names := make([]string, len(ps))
	byFold := map[string]int{}
	for i, p := range ps {
		names[i] = fatName(p.Stateroot, p.ID)
		if len(names[i]) > 255 {
			return fmt.Errorf("%w: entry file name %s is longer than FAT allows", ErrInvalidSet, names[i])
		}
		// FAT compares names without case, and '-' joins stateroot and id ambiguously.
		fold := strings.ToLower(names[i])
		if j, dup := byFold[fold]; dup {
			return fmt.Errorf("%w: deployments %d and %d both need the entry file %s", ErrInvalidSet, j, i, names[i])
		}
		byFold[fold] = i
	}

	link := loaderDir(boot)
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("%w: %s is a symlink; FAT mode keeps entries in a plain directory", ErrUnknownLayout, link)
	}
	dir := filepath.Join(link, "entries")

	if err := opts.step("sync-boot-files"); err != nil {
		return err
	}
	if err := syncBootFiles(boot, ps); err != nil {
		return err
	}
	if err := opts.step("mkdir"); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range []string{link, boot} {
		if err := syncPath(d); err != nil {
			return err
		}
	}

	existing, gen, err := scanFAT(dir)
	if err != nil {
		return err
	}
	gen++

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

	// The new default goes first: from then on it sorts above every old entry, so the default
	// is only ever the old one or the new one. The rest follow in order; removals come last so
	// the menu never shrinks below the new set.
	keep := map[string]bool{}
	for i := range ps {
		n := len(ps) - i
		e := ps[i].entry(names[i], strconv.FormatUint(gen, 10)+"."+strconv.Itoa(n), true)
		if err := opts.step("write " + e.Name); err != nil {
			return err
		}
		if err := bls.WriteFile(dir, &e); err != nil {
			return err
		}
		keep[e.Name] = true
	}
	// GRUB (a generic image booted through BIOS) reads the same set from a menu next to the
	// entries; it switches with one rename, once the new entries are all there.
	menuOpts := opts
	menuOpts.BootSeparate = true
	menu, err := grubMenu(ps, menuOpts)
	if err != nil {
		return err
	}
	if err := opts.step("write " + GrubMenu); err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(link, GrubMenu), menu, 0o644); err != nil {
		return fmt.Errorf("writing the GRUB menu: %w", err)
	}
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
	if err := opts.step("sync"); err != nil {
		return err
	}
	return syncPath(dir)
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
