// Package assess tells where the booted deployment stands in boot counting: which boot loader
// counts, whether the deployment is on trial and with how many tries left, and whether the boot
// loader gave up on a newer deployment and fell back to this one.
//
// The boot loader that booted the host is the one counting. systemd-boot says it booted the host
// in the EFI variable LoaderInfo, and counts in the entry file names (NAME+LEFT-DONE.conf,
// renamed before each try); without that variable GRUB booted the host and counts in grubenv
// (boot_counter, with bootc_trial naming the deployment on trial). A disk that carries both
// (an image made with --generic-image) therefore counts with whichever booted it.
package assess

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/efivar"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
)

// Loader is the boot loader that booted the host.
type Loader string

// The boot loaders.
const (
	SystemdBoot Loader = "systemd-boot"
	GRUB        Loader = "GRUB"
)

// Options say what to look at.
type Options struct {
	Root layout.Root
	// Stateroot and ID name the booted deployment.
	Stateroot, ID string
	// EFIVars is the EFI variables' directory; "" means efivar.Dir's default.
	EFIVars string
}

// State is where the booted deployment stands.
type State struct {
	Loader Loader
	// LoaderInfo is systemd-boot's name and version, "" under GRUB.
	LoaderInfo string
	// Stateroot and ID name the booted deployment.
	Stateroot, ID string
	// Set is the boot entry set as the boot loader lists it now, default first (an entry
	// systemd-boot counted down to no tries left sorts last).
	Set []bootloader.Deployment
	// Booted is the booted deployment's entry in Set; nil when the boot loader does not list it.
	Booted *bootloader.Deployment
	// Trial: the booted deployment is on trial. TriesLeft is how many boots it has after this
	// one; at 0 the next boot is the fallback.
	Trial     bool
	TriesLeft int
	// CountedBoot: the boot loader counted this boot as a try. Under systemd-boot that holds
	// even once systemd-bless-boot removed the counter from the booted entry's name.
	CountedBoot bool
	// Fallback is set when the boot loader gave up on a newer deployment and booted this one.
	Fallback *Fallback

	// grubTrial is the deployment grubenv's bootc_trial names and grubCounter its boot_counter,
	// when GRUB counts.
	grubTrial   string
	grubCounter int
}

// Fallback is a deployment whose tries ran out.
type Fallback struct {
	// Failed is its entry.
	Failed bootloader.Deployment
	// Tries is how many boots it was given.
	Tries int
}

// Load reads the boot entries, grubenv and the EFI variables. A missing grubenv or EFI
// variables directory is no error (nothing counts there); a grubenv that cannot be read is.
func Load(opts Options) (*State, error) {
	set, err := bootloader.ReadSet(opts.Root.Boot)
	if err != nil {
		return nil, fmt.Errorf("assessing the boot: %w", err)
	}
	s := &State{Loader: GRUB, Stateroot: opts.Stateroot, ID: opts.ID, Set: set}
	for i := range set {
		if set[i].Stateroot == opts.Stateroot && set[i].ID == opts.ID {
			s.Booted = &set[i]
			break
		}
	}
	info, ok, err := efivar.ReadString(efivar.Dir(opts.EFIVars), efivar.LoaderInfo)
	if err != nil {
		return nil, fmt.Errorf("assessing the boot: %w", err)
	}
	if ok {
		s.Loader, s.LoaderInfo = SystemdBoot, info
		_, counted, err := efivar.ReadString(efivar.Dir(opts.EFIVars), efivar.LoaderBootCountPath)
		if err != nil {
			return nil, fmt.Errorf("assessing the boot: %w", err)
		}
		s.systemdBoot()
		s.CountedBoot = s.Trial || counted
		return s, nil
	}
	env, err := bootcount.ReadEnv(layout.GrubEnv(opts.Root.Boot))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("assessing the boot: %w", err)
	}
	if err := s.grub(env); err != nil {
		return nil, fmt.Errorf("assessing the boot: %w", err)
	}
	return s, nil
}

// systemdBoot reads the counters in the entry names. systemd-boot renamed the booted entry
// before booting it, so its name holds the tries left after this boot, 0 on the last one. An
// entry that is not booted and has no tries left is one systemd-boot gave up on (only a new
// default entry is ever counted); one with tries left is not, even when a person picked another
// entry by hand.
func (s *State) systemdBoot() {
	if s.Booted != nil && s.Booted.Counter.Counted {
		s.Trial, s.TriesLeft = true, s.Booted.Counter.Left
	}
	for _, d := range s.Set {
		if !s.isBooted(d) && d.Counter.Counted && d.Counter.Left == 0 {
			s.Fallback = &Fallback{Failed: d, Tries: d.Counter.Done}
			return
		}
	}
}

// grub reads grubenv as the generated menu leaves it: bootc_trial names the deployment on
// trial, boot_counter its tries left after this boot, or -1 once GRUB gave up and booted entry 1.
// GRUB decrements the counter whichever entry is picked, so a person booting the old entry by
// hand leaves a counter of 0 or more: no fallback.
func (s *State) grub(env *bootcount.Env) error {
	trial, _ := env.Get(bootcount.VarTrial)
	if trial == "" {
		return nil
	}
	n, ok, err := env.BootCounter()
	if err != nil || !ok {
		return err
	}
	s.grubTrial, s.grubCounter = trial, n
	if n >= 0 && trial == layout.DeploymentKargValue(s.Stateroot, s.ID) {
		s.Trial, s.TriesLeft, s.CountedBoot = true, n, true
	}
	if n == -1 && len(s.Set) > 0 {
		first := s.Set[0]
		if !s.isBooted(first) && first.Counter.Counted && trial == layout.DeploymentKargValue(first.Stateroot, first.ID) {
			s.Fallback = &Fallback{Failed: first, Tries: first.Counter.Left}
		}
	}
	return nil
}

// Count is where a deployment's entry stands, as the boot loader that booted the host counts:
// nil when the entry is not counted (blessed, or never on trial). systemd-boot's count is in the
// entry's name. GRUB cannot rename files, so a name keeps the tries the entry was armed with; what
// GRUB counts is boot_counter, for the deployment bootc_trial names only. The booted entry with
// no try left is on its last try, not bad: it is bad only if this boot fails.
func (s *State) Count(stateroot, id string) *host.BootCount {
	i := slices.IndexFunc(s.Set, func(d bootloader.Deployment) bool { return d.Stateroot == stateroot && d.ID == id })
	if i < 0 || !s.Set[i].Counter.Counted {
		return nil
	}
	d := s.Set[i]
	left := d.Counter.Left
	if s.Loader == GRUB {
		if s.grubTrial != layout.DeploymentKargValue(stateroot, id) {
			return nil
		}
		left = s.grubCounter
	}
	switch {
	case left > 0:
		return &host.BootCount{State: host.BootCountTrial, TriesLeft: left}
	case left == 0 && s.isBooted(d):
		return &host.BootCount{State: host.BootCountTrial}
	}
	return &host.BootCount{State: host.BootCountBad}
}

func (s *State) isBooted(d bootloader.Deployment) bool {
	return d.Stateroot == s.Stateroot && d.ID == s.ID
}

// FallbackTarget is the entry the boot loader boots once the booted deployment's tries run out:
// the first other entry that is not itself out of tries. nil when there is none.
func (s *State) FallbackTarget() *bootloader.Deployment {
	for i := range s.Set {
		d := &s.Set[i]
		if !s.isBooted(*d) && d.Counter.State() != bootcount.Bad {
			return d
		}
	}
	return nil
}

// RebootHelps says whether rebooting after a RED boot gets the host anywhere: only on trial with
// a deployment to fall back to, where the boot loader counts the reboot as a try. Otherwise (no
// update on trial: steady state, first boot after install, a fallback boot) a reboot boots the
// same deployment again, and why says so.
func (s *State) RebootHelps() (ok bool, why string) {
	switch {
	case !s.Trial:
		return false, fmt.Sprintf("deployment %s is not on trial, so a reboot would boot it again", layout.DeploymentKargValue(s.Stateroot, s.ID))
	case s.FallbackTarget() == nil:
		return false, "no other deployment to fall back to"
	}
	return true, ""
}
