package bootloader

// Boot counting. A set whose default has Tries > 0 puts that entry on trial, in both modes and
// for both boot loaders at once, so that a disk carrying both counts with whichever booted it:
//   - systemd-boot: the entry file is named NAME+TRIES.conf; systemd-boot renames it before
//     each try (NAME+LEFT-DONE.conf) and sorts it below the others once no try is left, so the
//     next entry boots. Bless removes the counter from the name.
//   - GRUB: WriteSet writes boot_counter=TRIES, boot_success=0 and bootc_trial=<stateroot>/<id>
//     into grubenv (grub/grubenv on the filesystem of the menu) before the switch, and the
//     generated menu counts down: while bootc_trial names its default and boot_success is 0,
//     each boot costs a try, and with none left the menu boots the next entry and sets
//     boot_counter to -1 (greenboot's variables, with
//     greenboot's meaning, so its scripts keep reading them). Bless sets boot_success=1 and
//     removes the other two, and the menu's countdown does nothing from then on. bootc_trial
//     ties the counter to one entry: a crash between arming and the switch leaves the old
//     menu, whose default is another deployment, untouched by it.
//
// While it counts, GRUB adds TrialArgs to the trial entry's command line; the entry files keep
// the same kernel arguments on trial or not. (systemd-boot cannot add arguments; it tells the
// initramfs through the LoaderBootCountPath EFI variable instead.)

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/bls"
	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/durable"
	"gobootc.dev/lib/layout"
)

// TrialArgs is what GRUB adds to a trial entry's command line: a failing initramfs reboots,
// so that the try ends and counting goes on, instead of waiting in dracut's emergency shell.
const TrialArgs = "rd.shell=0 rd.emergency=reboot"

// fileName is the entry file name for id (no suffix), with a counter when p is on trial.
func (p *prepared) fileName(id string) string {
	if p.Tries > 0 {
		return bootcount.Armed(id, p.Tries).File()
	}
	return id + bootcount.Suffix
}

// grubID is the menu entry id GRUB knows a deployment by.
func grubID(d *Deployment) string { return "bootc-" + d.Stateroot + "-" + d.ID }

// trialKey is the value of bootcount.VarTrial for a deployment.
func trialKey(stateroot, id string) string { return layout.DeploymentKargValue(stateroot, id) }

// writeCountdown emits the menu commands that count the trial default down (see above). Debian's
// GRUB has no arithmetic, so the countdown is one branch per value.
func writeCountdown(b *bytes.Buffer, ps []prepared, opts Options) {
	trial, fallback := &ps[0], &ps[1]
	env := grubEnvPath(opts)
	fmt.Fprintf(b, "\n# Boot counting: %s is on trial; with no try left, %s boots.\n",
		trialKey(trial.Stateroot, trial.ID), trialKey(fallback.Stateroot, fallback.ID))
	// A menu entry sees only exported variables.
	b.WriteString("set bootc_trial_args=\nexport bootc_trial_args\n")
	fmt.Fprintf(b, "load_env -f %s %s %s %s\n", env, bootcount.VarTrial, bootcount.VarBootCounter, bootcount.VarBootSuccess)
	fmt.Fprintf(b, "if [ \"${%s}\" = %s -a \"${%s}\" = \"0\" ]; then\n",
		bootcount.VarTrial, grubQuote(trialKey(trial.Stateroot, trial.ID)), bootcount.VarBootSuccess)
	fmt.Fprintf(b, "\tif [ \"${%[1]s}\" = \"0\" -o \"${%[1]s}\" = \"-1\" ]; then\n", bootcount.VarBootCounter)
	fmt.Fprintf(b, "\t\tset default=%s\n\t\tset %s=-1\n\t\tsave_env -f %s %[2]s\n", grubQuote(grubID(&fallback.Deployment)), bootcount.VarBootCounter, env)
	for n := trial.Tries; n > 0; n-- {
		fmt.Fprintf(b, "\telif [ \"${%[1]s}\" = \"%[2]d\" ]; then\n\t\tset %[1]s=%[3]d\n\t\tsave_env -f %[4]s %[1]s\n", bootcount.VarBootCounter, n, n-1, env)
		fmt.Fprintf(b, "\t\tset bootc_trial_args=%s\n", grubQuote(TrialArgs))
	}
	b.WriteString("\tfi\nfi\n")
}

// grubInstalled says GRUB boots from boot: install wrote its configuration there.
func grubInstalled(boot string) bool {
	_, err := os.Stat(layout.GrubConfig(boot))
	return err == nil
}

// grubCounts says a trial must be armed in grubenv: GRUB reads this set's menu.
func grubCounts(boot string, opts Options) bool { return opts.Grub || grubInstalled(boot) }

// grubEnvPath is grubenv as GRUB names it from the menu: next to the menu, on the filesystem
// holding the entries (its root there), not in $prefix: a --generic-image disk keeps GRUB's
// own files on the root filesystem, under the ESP's mount point on a booted host.
func grubEnvPath(opts Options) string {
	return entryPath(layout.GrubEnv("/"), opts.BootSeparate)
}

// CountingUnsupported says why boot counting cannot work with the boot loader installed on boot,
// or "" when it can. GRUB counts by rewriting grubenv in place, which it refuses to do on
// btrfs and ZFS; systemd-boot counts in file names, which every ESP allows.
func CountingUnsupported(boot string) string {
	if !grubInstalled(boot) {
		return ""
	}
	var st unix.Statfs_t
	if err := unix.Statfs(layout.GrubDir(boot), &st); err != nil {
		return fmt.Sprintf("cannot tell the filesystem of %s: %v", layout.GrubDir(boot), err)
	}
	switch int64(st.Type) {
	case unix.BTRFS_SUPER_MAGIC:
		return fmt.Sprintf("GRUB cannot write its environment block (grubenv) on btrfs, which holds %s", layout.GrubDir(boot))
	case zfsSuperMagic:
		return fmt.Sprintf("GRUB cannot write its environment block (grubenv) on ZFS, which holds %s", layout.GrubDir(boot))
	}
	return ""
}

// TrialTries is how many boots a deployment gets when it becomes the default on trial: as its
// own configuration says (bootcount.LoadTries over its /usr and its /etc, before it boots), none
// where the boot loader cannot count. note says what was decided, for the caller to print. A
// configuration that cannot be read gives bootcount.DefaultTries: it costs an update nothing.
func TrialTries(r layout.Root, stateroot, id string) (tries int, note string) {
	if reason := CountingUnsupported(r.Boot); reason != "" {
		return 0, "Boot counting is off: " + reason + "."
	}
	t, err := bootcount.LoadTries(bootcount.SourcesIn(r.Deployment(stateroot, id), r.Etc(stateroot, id)))
	if err != nil {
		return bootcount.DefaultTries, fmt.Sprintf("warning: %v; %s/%s gets %d tries", err, stateroot, id, bootcount.DefaultTries)
	}
	return t.N, fmt.Sprintf("Boot counting: %s/%s is on trial; tries: %s", stateroot, id, t)
}

// zfsSuperMagic is ZFS's statfs type, which x/sys does not name.
const zfsSuperMagic = 0x2fc12fc1

// armGrub writes the grubenv variables that start the trial of ps[0], when GRUB boots from
// boot: before the switch, so that the new menu never runs without them.
func armGrub(boot string, ps []prepared, opts Options) error {
	if ps[0].Tries == 0 || !grubCounts(boot, opts) {
		return nil
	}
	if err := opts.step("arm grubenv"); err != nil {
		return err
	}
	if err := os.MkdirAll(layout.GrubDir(boot), 0o755); err != nil {
		return err
	}
	path := layout.GrubEnv(boot)
	e, err := bootcount.ReadEnv(path)
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, bootcount.ErrEnvInvalid):
		// GRUB ignores a block it cannot read too; a fresh one is what it needs now.
		e = &bootcount.Env{}
	case err != nil:
		return err
	}
	if err := e.SetBootCounter(ps[0].Tries); err != nil {
		return err
	}
	if err := e.SetBootSuccess(false); err != nil {
		return err
	}
	if err := e.Set(bootcount.VarTrial, trialKey(ps[0].Stateroot, ps[0].ID)); err != nil {
		return err
	}
	return bootcount.WriteEnv(path, e)
}

// disarmGrub removes a trial the new set no longer has from grubenv, after the switch (the new
// menu does not count anyway; this only keeps scripts that read boot_counter from seeing a
// trial that is over).
func disarmGrub(boot string, ps []prepared, opts Options) error {
	if ps[0].Tries > 0 {
		return nil
	}
	_, err := endTrial(boot, "", false, opts)
	return err
}

// endTrial removes bootc_trial and boot_counter from grubenv when bootc_trial names key (any
// trial when key is empty); good also sets boot_success=1. It reports whether it changed the
// block. A missing block is no trial.
func endTrial(boot, key string, good bool, opts Options) (bool, error) {
	path := layout.GrubEnv(boot)
	e, err := bootcount.ReadEnv(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	v, ok := e.Get(bootcount.VarTrial)
	if !ok || key != "" && v != key {
		return false, nil
	}
	if err := opts.step("disarm grubenv"); err != nil {
		return false, err
	}
	e.Unset(bootcount.VarTrial)
	e.UnsetBootCounter()
	if good {
		if err := e.SetBootSuccess(true); err != nil {
			return false, err
		}
	}
	return true, bootcount.WriteEnv(path, e)
}

// Bless ends the trial of a deployment that booted well, as systemd-bless-boot does for
// systemd-boot: its entry loses the counter in its name (one rename, so the entry is never
// missing), and a GRUB trial of it ends with boot_success=1. It reports whether anything
// changed; blessing a deployment that is not on trial changes nothing. The caller holds the
// writer lock.
func Bless(boot, stateroot, id string) (bool, error) {
	dir := layout.LoaderEntries(layout.Loader(boot))
	entries, err := bls.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("blessing %s/%s: %w", stateroot, id, err)
	}
	renamed := false
	for i := range entries {
		d, ok, err := fromEntry(&entries[i])
		if err != nil || !ok || d.Stateroot != stateroot || d.ID != id || !d.Counter.Counted {
			continue
		}
		to := filepath.Join(dir, d.Counter.Bless().File())
		if err := os.Rename(filepath.Join(dir, d.Entry), to); err != nil {
			return false, fmt.Errorf("blessing %s/%s: %w", stateroot, id, err)
		}
		renamed = true
	}
	if renamed {
		if err := durable.Sync(dir); err != nil {
			return false, fmt.Errorf("blessing %s/%s: %w", stateroot, id, err)
		}
	}
	ended, err := endTrial(boot, trialKey(stateroot, id), true, Options{})
	if err != nil {
		return renamed, fmt.Errorf("blessing %s/%s: %w", stateroot, id, err)
	}
	return renamed || ended, nil
}
