// Package bootloader writes the set of boot entries that decides what boots next, so that a boot
// loader always finds a complete set: the old one or the new one.
//
// A set is an ordered list of deployments, the default first. WriteSet replaces the whole set;
// there is no "set default" or "swap" helper because the caller already knows the list it wants
// (a rollback is WriteSet with the first two swapped). ReadSet returns the set the boot loader
// sees now, default first.
//
// # Symlink mode (/boot on ext4, xfs, btrfs; GRUB)
//
// boot/loader is a symlink to loader.0 or loader.1. WriteSet fills the other directory from
// scratch (entries/bootc-<N>.conf plus a grub.cfg built from the same entries), fsyncs every file
// and directory, points a temporary symlink at it and renames that over boot/loader, fsyncs
// boot/, and only then removes the previous directory. The rename is the single instant at which
// the boot loader switches, so at every instant, power loss included, it sees the complete old
// set or the complete new one. Entry N sorts before N-1 under the BLS rules (sort-key "bootc",
// version N, file name bootc-N), so GRUB's BLS support, systemd-boot and the generated grub.cfg
// agree on the order. For GRUB builds without BLS support, WriteGrubConfig writes once, at
// install, a static boot/grub/grub.cfg that only loads loader/grub.cfg through the symlink, so
// GRUB follows the same switch.
//
// Beyond the rename, three things are needed for that promise to hold, and WriteSet does them:
//   - the kernels and initramfs images the new entries name are fsynced (with their directories)
//     before the switch: a durable entry that points at a file still in the page cache is a
//     set that does not boot;
//   - after the switch the filesystem is frozen and thawed at once, which writes the journal
//     back to its home locations. GRUB reads ext4 and xfs without replaying the journal; without
//     the checkpoint it could see a boot/ whose switch lives only in the journal while the old
//     directory is already being deleted. Freezing needs CAP_SYS_ADMIN; without it, or on a
//     filesystem that cannot freeze, WriteSet falls back to syncfs (Options.NoFreeze skips it);
//   - a boot/loader that is still a plain directory (an older layout, or a tree prepared before
//     the first WriteSet) cannot be replaced by rename; it is swapped with the new symlink in one
//     renameat2(RENAME_EXCHANGE), which ext4, xfs and btrfs support, so migration is atomic too.
//
// Entry paths follow the BLS rule that they are relative to the filesystem holding the entries:
// with /boot on the root filesystem they get a /boot prefix, on a separate /boot partition not
// (Options.BootSeparate). Deployment.Kernel and Initrd are always relative to /boot.
//
// # FAT mode (systemd-boot on an ESP or XBOOTLDR partition)
//
// vfat has no symlinks, so there is no single switch. Entries live directly in loader/entries,
// one file per deployment (bootc-<stateroot>-<id>.conf), each replaced by writing a temporary
// file, fsyncing it, renaming it over the old one and fsyncing the directory. Every WriteSet
// takes a new generation G, one above any bootc entry present, and gives deployment i of n the
// version "G.(n-i)", so every entry of the new set sorts before every leftover of the old one.
// Entries are written default first, then the rest in order, and entries that left the set are
// deleted last. Hence at every step boundary:
//   - every entry file present is complete (old or new content) and names a deployment of the
//     old or the new set, whose kernel is durable;
//   - the menu never loses its last entry (removals come after all writes);
//   - the default is the old default until the new default's entry is written, and the new
//     default from then on; no third deployment is ever the default. (Without the generation,
//     reordering could briefly make a third deployment the default: versions are compared
//     across old and new entries.)
//
// What FAT does not give is atomicity across files: after a crash the menu can hold the new
// default followed by a mix of old and new entries, in an order that is neither the old nor the
// new one. Nor is a single rename crash-proof there: vfat has no journal, and a power cut in the
// middle of a directory update can need fsck. Rerunning WriteSet repairs any such state.
//
// # Failure and retry
//
// On an error WriteSet stops where it is, as a crash would, and cleans nothing up; the next call
// removes what an interrupted one left (the unused loader.N, boot/loader.tmp, temporary entry
// files) before it starts. Options.Failpoint lets tests stop it before any step.
package bootloader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"gobootc.dev/lib/bls"
	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/layout"
)

var (
	// ErrInvalidSet is returned (wrapped) when a set cannot be written as given.
	ErrInvalidSet = errors.New("invalid boot entry set")
	// ErrUnknownLayout is returned (wrapped) when boot/loader is something this package does not
	// manage, such as a symlink to another directory or a regular file.
	ErrUnknownLayout = errors.New("unexpected boot loader layout")
)

// Mode selects how WriteSet makes the switch atomic.
type Mode int

const (
	// ModeAuto uses ModeFAT on FAT filesystems (no symlinks) and ModeSymlink everywhere else.
	ModeAuto Mode = iota
	// ModeSymlink writes a new loader.N directory and switches the boot/loader symlink.
	ModeSymlink
	// ModeFAT rewrites loader/entries file by file, in an order that keeps every step bootable.
	ModeFAT
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeSymlink:
		return "symlink"
	case ModeFAT:
		return "fat"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DefaultTimeout is how many seconds the generated GRUB menu waits when Options.Timeout is 0.
const DefaultTimeout = 5

// sortKey groups bootc's entries; it sorts before entries without one.
const sortKey = "bootc"

// Deployment is one entry of a set.
type Deployment struct {
	Stateroot string
	ID        string
	// Title is the menu line; empty means "<stateroot>/<id>".
	Title string
	// Kernel and Initrd are absolute paths relative to /boot ("/bootc/sha256-<hex>/vmlinuz"),
	// whatever filesystem /boot is on. Initrd may be empty.
	Kernel string
	Initrd string
	// Kargs is the kernel command line without the bootc.deployment argument, which WriteSet
	// appends and ReadSet removes. WriteSet also appends panic=PanicTimeout when there is no
	// panic argument, so that a kernel panic resets the machine instead of hanging it.
	Kargs string
	// Tries, when above zero, puts the entry on trial: the boot loader gives it that many boots
	// before it falls back to the next entry (see trial.go). Only the default, set[0], can be on
	// trial, and only with another entry to fall back to.
	Tries int

	// Entry is the entry's file name and Counter its boot counter, as ReadSet found them;
	// WriteSet ignores both.
	Entry   string
	Counter bootcount.Name
}

// PanicTimeout is the panic= every entry gets unless its kargs set one: seconds before the
// kernel resets after a panic. Without it a panicking kernel waits forever, and a trial entry's
// try never ends.
const PanicTimeout = 10

// panicKarg is the argument WriteSet adds and ReadSet removes again.
var panicKarg, _ = cmdline.NewArg("panic", strconv.Itoa(PanicTimeout))

// Options tunes WriteSet and WriteGrubConfig. The zero value writes with auto-detected mode for
// /boot on the root filesystem, finding it without a UUID.
type Options struct {
	Mode Mode
	// BootSeparate says /boot is its own filesystem: entry and GRUB paths are relative to it,
	// not to the root filesystem. FAT mode implies it.
	BootSeparate bool
	// FSUUID is the filesystem UUID of the filesystem holding /boot; GRUB searches for it to set
	// its root. Without it GRUB keeps the root it loaded its configuration from, and searches
	// for the menu file only if that root does not have it.
	FSUUID string
	// Timeout is the GRUB menu timeout in seconds: 0 means DefaultTimeout, negative boots the
	// default without waiting.
	Timeout int
	// Grub says GRUB may boot from the generated menu, so a trial is armed in grubenv too (see
	// trial.go). Without it, GRUB is assumed where install left its configuration in boot.
	Grub bool
	// NoFreeze skips the freeze/thaw checkpoint after the switch (tests; filesystems where a
	// freeze is unwelcome). The switch is then durable in the journal only until the kernel
	// writes it back.
	NoFreeze bool
	// Failpoint, when set, is called before every step with the step's name; a non-nil error
	// stops WriteSet right there, leaving the disk as a crash at that point would.
	Failpoint func(step string) error
}

func (o *Options) step(name string) error {
	if o.Failpoint == nil {
		return nil
	}
	if err := o.Failpoint(name); err != nil {
		return fmt.Errorf("before step %q: %w", name, err)
	}
	return nil
}

// WriteSet makes set the boot menu, set[0] the default. See the package documentation for what
// each mode guarantees while it runs. The kernels and initramfs images must already be in /boot;
// the caller holds the bootc writer lock, and deletes the files of deployments that left the set
// only after WriteSet returns.
func WriteSet(boot string, set []Deployment, opts Options) error {
	mode := opts.Mode
	if mode == ModeAuto {
		m, err := DetectMode(boot)
		if err != nil {
			return fmt.Errorf("writing boot entries: %w", err)
		}
		mode = m
	}
	var err error
	switch mode {
	case ModeSymlink:
		err = writeSymlinkSet(boot, set, opts)
	case ModeFAT:
		err = writeFATSet(boot, set, opts)
	default:
		err = fmt.Errorf("unknown mode %v", mode)
	}
	if err != nil {
		return fmt.Errorf("writing boot entries (%v mode) in %s: %w", mode, boot, err)
	}
	return nil
}

// ReadSet returns the deployments the boot loader offers now, default first, in either mode.
// Only entries carrying a bootc.deployment argument count; others (another OS's entries on a
// shared ESP) are skipped. If two entries name the same deployment, the first one wins. A /boot
// with no entries yet gives an empty set.
func ReadSet(boot string) ([]Deployment, error) {
	link := layout.Loader(boot)
	dir := layout.LoaderEntries(link)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		// No entries yet is an empty set; a boot/loader symlink to nothing is a broken /boot.
		if fi, lerr := os.Lstat(link); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			if _, serr := os.Stat(link); serr != nil {
				return nil, fmt.Errorf("reading boot entry set: %w: %s is a dangling symlink", ErrUnknownLayout, link)
			}
		}
		return nil, nil
	}
	entries, err := bls.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("reading boot entry set: %w", err)
	}
	var set []Deployment
	seen := map[string]bool{}
	for i := range entries {
		d, ok, err := fromEntry(&entries[i])
		if err != nil {
			return nil, fmt.Errorf("reading boot entry set: %w", err)
		}
		key := layout.DeploymentKargValue(d.Stateroot, d.ID)
		if !ok || seen[key] {
			continue
		}
		seen[key] = true
		set = append(set, d)
	}
	return set, nil
}

// fromEntry turns an entry into a Deployment; ok is false for an entry that is not bootc's.
func fromEntry(e *bls.Entry) (Deployment, bool, error) {
	c, err := cmdline.Parse(e.Cmdline())
	if err != nil {
		return Deployment{}, false, fmt.Errorf("entry %s: %w", e.Name, err)
	}
	vals := c.Get(layout.DeploymentKarg)
	switch len(vals) {
	case 0:
		return Deployment{}, false, nil
	case 1:
	default:
		return Deployment{}, false, fmt.Errorf("entry %s: %s given %d times", e.Name, layout.DeploymentKarg, len(vals))
	}
	stateroot, id, err := layout.ParseDeploymentKarg(vals[0])
	if err != nil {
		return Deployment{}, false, fmt.Errorf("entry %s: %w", e.Name, err)
	}
	if len(e.Initrd) > 1 {
		return Deployment{}, false, fmt.Errorf("entry %s: %d initrd lines, want at most one", e.Name, len(e.Initrd))
	}
	c.Remove(layout.DeploymentKarg)
	c.RemoveExact(panicKarg)
	d := Deployment{
		Stateroot: stateroot,
		ID:        id,
		Title:     e.Title,
		Kernel:    fromEntryPath(e.Linux),
		Kargs:     c.String(),
		Entry:     e.Name,
		Counter:   e.BootName(),
	}
	if len(e.Initrd) == 1 {
		d.Initrd = fromEntryPath(e.Initrd[0])
	}
	return d, true, nil
}

// rootPrefix is what makes a /boot-relative path relative to the root filesystem.
const rootPrefix = "/boot"

// fromEntryPath undoes entryPath. It is unambiguous because checkBootPath refuses /boot-relative
// paths that themselves start with /boot/.
func fromEntryPath(p string) string {
	if strings.HasPrefix(p, rootPrefix+"/") {
		return strings.TrimPrefix(p, rootPrefix)
	}
	return p
}

// entryPath is p as the boot loader must see it.
func entryPath(p string, bootSeparate bool) string {
	if p == "" || bootSeparate {
		return p
	}
	return rootPrefix + p
}

// prepared is a validated deployment with its rendered command line.
type prepared struct {
	Deployment
	cmdline *cmdline.Cmdline
}

var uuidRe = regexp.MustCompile(`^[0-9A-Fa-f][0-9A-Fa-f-]*$`)

// prepare checks a set before anything is written, so that a bad input never gets as far as
// touching /boot.
func prepare(boot string, set []Deployment, opts Options) ([]prepared, error) {
	if len(set) == 0 {
		return nil, fmt.Errorf("%w: the set is empty; it would leave nothing to boot", ErrInvalidSet)
	}
	if opts.FSUUID != "" && !uuidRe.MatchString(opts.FSUUID) {
		return nil, fmt.Errorf("%w: filesystem UUID %q: want hex digits and dashes", ErrInvalidSet, opts.FSUUID)
	}
	out := make([]prepared, 0, len(set))
	seen := map[string]int{}
	for i, d := range set {
		p, err := prepareOne(boot, d)
		if err != nil {
			return nil, fmt.Errorf("%w: deployment %d: %w", ErrInvalidSet, i, err)
		}
		switch {
		case d.Tries < 0 || d.Tries > bootcount.MaxTries:
			return nil, fmt.Errorf("%w: deployment %d: %d tries, want 0 to %d", ErrInvalidSet, i, d.Tries, bootcount.MaxTries)
		case d.Tries > 0 && i > 0:
			return nil, fmt.Errorf("%w: deployment %d is on trial; only the default can be", ErrInvalidSet, i)
		case d.Tries > 0 && len(set) < 2:
			return nil, fmt.Errorf("%w: the default is on trial with no other entry to fall back to", ErrInvalidSet)
		}
		key := layout.DeploymentKargValue(d.Stateroot, d.ID)
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("%w: deployment %d: %s is already deployment %d", ErrInvalidSet, i, key, j)
		}
		seen[key] = i
		out = append(out, p)
	}
	return out, nil
}

func prepareOne(boot string, d Deployment) (prepared, error) {
	if err := layout.CheckName("stateroot", d.Stateroot); err != nil {
		return prepared{}, err
	}
	if err := layout.CheckName("deployment id", d.ID); err != nil {
		return prepared{}, err
	}
	if d.Title == "" {
		d.Title = layout.DeploymentKargValue(d.Stateroot, d.ID)
	}
	if strings.TrimSpace(d.Title) != d.Title || strings.ContainsFunc(d.Title, isControl) {
		return prepared{}, fmt.Errorf("title %q: control characters or surrounding whitespace", d.Title)
	}
	if err := checkBootPath(boot, "kernel", d.Kernel); err != nil {
		return prepared{}, err
	}
	if d.Initrd != "" {
		if err := checkBootPath(boot, "initrd", d.Initrd); err != nil {
			return prepared{}, err
		}
	}
	c, err := cmdline.Parse(d.Kargs)
	if err != nil {
		return prepared{}, fmt.Errorf("kargs: %w", err)
	}
	if c.Has(layout.DeploymentKarg) {
		return prepared{}, fmt.Errorf("kargs %q already carry %s; pass them without it", d.Kargs, layout.DeploymentKarg)
	}
	if !c.Has(panicKarg.Key()) {
		if err := c.Append(panicKarg); err != nil {
			return prepared{}, err
		}
	}
	arg, err := cmdline.NewArg(layout.DeploymentKarg, layout.DeploymentKargValue(d.Stateroot, d.ID))
	if err != nil {
		return prepared{}, err
	}
	if err := c.Append(arg); err != nil {
		return prepared{}, err
	}
	return prepared{Deployment: d, cmdline: c}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// checkBootPath accepts a clean absolute path naming a regular file under boot, written so that
// it fits unquoted on a BLS line and a GRUB command.
func checkBootPath(boot, what, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s path is empty", what)
	case !strings.HasPrefix(p, "/") || filepath.Clean(p) != p || p == "/":
		return fmt.Errorf("%s path %q: want a clean absolute path relative to /boot", what, p)
	case strings.ContainsFunc(p, func(r rune) bool { return isControl(r) || r == ' ' || strings.ContainsRune(`"'\$;{}`, r) }):
		return fmt.Errorf("%s path %q: contains whitespace, quotes or shell characters", what, p)
	case p == rootPrefix || strings.HasPrefix(p, rootPrefix+"/"):
		return fmt.Errorf("%s path %q: paths are relative to /boot; drop the /boot prefix", what, p)
	}
	fi, err := os.Stat(filepath.Join(boot, p))
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, p, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s %s: not a regular file", what, p)
	}
	return nil
}

// entry renders one BLS entry.
func (p *prepared) entry(name, version string, bootSeparate bool) bls.Entry {
	e := bls.Entry{
		Name:    name,
		Title:   p.Title,
		Version: version,
		SortKey: sortKey,
		Linux:   entryPath(p.Kernel, bootSeparate),
		Options: []string{p.cmdline.String()},
	}
	if p.Initrd != "" {
		e.Initrd = []string{entryPath(p.Initrd, bootSeparate)}
	}
	return e
}

// DetectMode reports the mode ModeAuto picks for boot: FAT mode on a FAT or exFAT filesystem,
// symlink mode otherwise. A missing boot directory is an error.
func DetectMode(boot string) (Mode, error) {
	fat, err := isFAT(boot)
	if err != nil {
		return ModeAuto, fmt.Errorf("detecting boot loader mode: %w", err)
	}
	if fat {
		return ModeFAT, nil
	}
	return ModeSymlink, nil
}
