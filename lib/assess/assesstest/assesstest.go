// Package assesstest plays the boot loader's part of boot counting for tests: a physical root
// whose entries bootloader.WriteSet writes, and power-ons that do to the entry files, grubenv and
// the EFI variables what systemd-boot or GRUB's generated menu do before they boot an entry.
package assesstest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"gobootc.dev/lib/assess"
	"gobootc.dev/lib/bls"
	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/efivar"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/sysroottest"
)

// Host is a physical root with one boot loader installed.
type Host struct {
	*sysroottest.Sysroot
	Loader assess.Loader
	// EFIVars is the host's EFI variables directory (empty under GRUB: a BIOS machine).
	EFIVars string
	// Mode is how the entries are written: FAT mode on systemd-boot's ESP, symlink mode for GRUB,
	// or, with Generic, FAT entries and a GRUB menu on the same disk.
	Mode bootloader.Mode
	deps map[string]*record.Deployment
}

// New makes a root booted by loader: systemd-boot (FAT entries as install records them,
// LoaderInfo set at each power-on) or GRUB (symlink mode with its static grub.cfg, so that
// WriteSet arms grubenv).
func New(t testing.TB, loader assess.Loader) *Host {
	t.Helper()
	h := &Host{Sysroot: sysroottest.New(t), Loader: loader, EFIVars: t.TempDir(), deps: map[string]*record.Deployment{}}
	if loader == assess.SystemdBoot {
		h.Mode = bootloader.ModeFAT
		if err := record.Write(h.Root.BootConfig(), &record.BootConfig{Version: record.FormatVersion, FAT: true, BootSeparate: true}); err != nil {
			t.Fatal(err)
		}
		return h
	}
	h.Mode = bootloader.ModeSymlink
	if err := bootloader.WriteGrubConfig(h.Root.Boot, bootloader.Options{}); err != nil {
		t.Fatal(err)
	}
	return h
}

// Generic puts a GRUB configuration next to systemd-boot's FAT entries, as on a disk made with
// --generic-image, which carries both boot loaders: WriteSet then arms grubenv as well.
func (h *Host) Generic() {
	h.T.Helper()
	if err := bootloader.WriteGrubConfig(h.Root.Boot, bootloader.Options{BootSeparate: true}); err != nil {
		h.T.Fatal(err)
	}
}

// Deploy adds a deployment of version v with its tree and boot files; mods change its record.
func (h *Host) Deploy(id, v string, mods ...func(*record.Deployment)) *record.Deployment {
	h.T.Helper()
	d := h.Sysroot.Deploy(id, v, mods...)
	h.Tree(d, sysroottest.ImageEtc, sysroottest.ImageEtc)
	h.deps[id] = d
	return d
}

// WriteSet writes the entry set ids, default first, with the default on trial for tries boots
// (0: no trial), as finalize does.
func (h *Host) WriteSet(tries int, ids ...string) {
	h.T.Helper()
	var set []bootloader.Deployment
	for _, id := range ids {
		set = append(set, bootloader.FromRecord(h.deps[id]))
	}
	set[0].Tries = tries
	opts := bootloader.Options{Mode: h.Mode, NoFreeze: true, BootSeparate: h.Mode == bootloader.ModeFAT}
	if err := bootloader.WriteSet(h.Root.Boot, set, opts); err != nil {
		h.T.Fatal(err)
	}
}

// PowerOn boots the machine: the boot loader counts as it would and boots its default, or the
// deployment pick when a person chose one in the menu; the initramfs writes the booted marker.
// It returns the booted deployment's id.
func (h *Host) PowerOn(pick string) string {
	h.T.Helper()
	// A new boot: the run directory is a fresh tmpfs.
	if err := os.RemoveAll(h.Root.Run); err != nil {
		h.T.Fatal(err)
	}
	var id string
	if h.Loader == assess.SystemdBoot {
		id = h.systemdBoot(pick)
	} else {
		id = h.grub(pick)
	}
	h.Boot(id)
	return id
}

// systemdBoot picks the first entry in systemd-boot's order (bad ones last), renames a counted
// one with a try less, and says so in LoaderBootCountPath.
func (h *Host) systemdBoot(pick string) string {
	dir := h.Root.Entries()
	entries, err := bls.ReadDir(dir)
	if err != nil || len(entries) == 0 {
		h.T.Fatalf("systemd-boot finds no entries: %v", err)
	}
	set, err := bootloader.ReadSet(h.Root.Boot)
	if err != nil {
		h.T.Fatal(err)
	}
	name := entries[0].Name
	if pick != "" {
		name = ""
		for _, d := range set {
			if d.ID == pick {
				name = d.Entry
			}
		}
		if name == "" {
			h.T.Fatalf("no entry for %s", pick)
		}
	}
	id := entryOf(set, name)
	h.setEFI(efivar.LoaderInfo, "systemd-boot 257.9")
	h.removeEFI(efivar.LoaderBootCountPath)
	if n := bootcount.ParseName(name); n.Counted {
		next := n.Next().File()
		if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, next)); err != nil {
			h.T.Fatal(err)
		}
		h.setEFI(efivar.LoaderBootCountPath, `\loader\entries\`+next)
	}
	return id
}

func entryOf(set []bootloader.Deployment, file string) string {
	for _, d := range set {
		if d.Entry == file {
			return d.ID
		}
	}
	return ""
}

// grub does what the generated menu does: while bootc_trial names the default and boot_success
// is 0, it takes a try from boot_counter, and with none left boots entry 1 and sets -1.
func (h *Host) grub(pick string) string {
	set, err := bootloader.ReadSet(h.Root.Boot)
	if err != nil || len(set) == 0 {
		h.T.Fatalf("GRUB finds no entries: %v", err)
	}
	def := set[0].ID
	path := layout.GrubEnv(h.Root.Boot)
	env, err := bootcount.ReadEnv(path)
	if err == nil && set[0].Counter.Counted {
		trial, _ := env.Get(bootcount.VarTrial)
		success, _ := env.Get(bootcount.VarBootSuccess)
		counter, _ := env.Get(bootcount.VarBootCounter)
		if trial == layout.DeploymentKargValue(set[0].Stateroot, set[0].ID) && success == "0" {
			n, _ := strconv.Atoi(counter)
			switch {
			case counter == "0" || counter == "-1":
				def = set[1].ID
				err = env.SetBootCounter(-1)
			case n > 0 && n <= set[0].Counter.Left:
				err = env.SetBootCounter(n - 1)
			}
			if err == nil {
				err = bootcount.WriteEnv(path, env)
			}
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		h.T.Fatal(err)
	}
	if pick != "" {
		return pick
	}
	return def
}

// SystemdBlessBoot removes the counter from the name of the first entry, the one just booted,
// as systemd-bless-boot does after a good boot.
func (h *Host) SystemdBlessBoot() {
	h.T.Helper()
	dir := h.Root.Entries()
	e := h.Entries()[0]
	if err := os.Rename(filepath.Join(dir, e), filepath.Join(dir, bootcount.ParseName(e).Bless().File())); err != nil {
		h.T.Fatal(err)
	}
}

func (h *Host) setEFI(name, value string) {
	h.T.Helper()
	if err := os.WriteFile(efivar.Path(h.EFIVars, name), efivar.Encode(value), 0o644); err != nil {
		h.T.Fatal(err)
	}
}

func (h *Host) removeEFI(name string) {
	h.T.Helper()
	if err := os.Remove(efivar.Path(h.EFIVars, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		h.T.Fatal(err)
	}
}

// GrubEnv returns grubenv's variables that boot counting uses, "" for unset ones.
func (h *Host) GrubEnv() (trial, counter, success string) {
	h.T.Helper()
	env, err := bootcount.ReadEnv(layout.GrubEnv(h.Root.Boot))
	if errors.Is(err, fs.ErrNotExist) {
		return "", "", ""
	}
	if err != nil {
		h.T.Fatal(err)
	}
	trial, _ = env.Get(bootcount.VarTrial)
	counter, _ = env.Get(bootcount.VarBootCounter)
	success, _ = env.Get(bootcount.VarBootSuccess)
	return trial, counter, success
}

// Entries returns the entry file names, in the boot loader's order.
func (h *Host) Entries() []string {
	h.T.Helper()
	set, err := bootloader.ReadSet(h.Root.Boot)
	if err != nil {
		h.T.Fatal(err)
	}
	var out []string
	for _, d := range set {
		out = append(out, d.Entry)
	}
	return out
}

// Load is assess.Load for the booted deployment.
func (h *Host) Load() *assess.State {
	h.T.Helper()
	b, err := record.ReadBooted(h.Root)
	if err != nil {
		h.T.Fatal(err)
	}
	s, err := assess.Load(assess.Options{Root: h.Root, Stateroot: b.Stateroot, ID: b.ID, EFIVars: h.EFIVars})
	if err != nil {
		h.T.Fatal(err)
	}
	return s
}
