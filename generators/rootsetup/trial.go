package rootsetup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gobootc.dev/lib/efivar"
)

// The initramfs of a boot on trial: see "On a boot on trial" in the package documentation.

// What the initramfs is told on a boot on trial.
const (
	// TrialArgs make dracut's emergency path reboot instead of starting a shell: rd.shell=0
	// refuses the shell, rd.emergency=reboot says what to do instead. They are dracut's own
	// arguments, the same that GRUB adds to a trial entry.
	TrialArgs = "rd.shell=0 rd.emergency=reboot"
	// TrialCmdline is the file, under the initramfs's root, that receives TrialArgs. systemd
	// runs generators with / read-only but /run writable, so it lives in /run.
	TrialCmdline = "run/bootc/trial-cmdline.conf"
	// TrialCmdlineLink is the link the dracut module puts in the initramfs, pointing to
	// /TrialCmdline: dracut's getarg reads /etc/cmdline.d/*.conf (skipping a dangling link)
	// before /proc/cmdline, so an argument a person typed in the boot menu (rd.shell=1, say)
	// still wins.
	TrialCmdlineLink = "etc/cmdline.d/50-bootc-trial.conf"
	// InitrdRelease is the file, under a root, whose presence says the root is an initramfs.
	InitrdRelease = "etc/initrd-release"
)

// ErrNotInitrd means ArmTrialReboot was pointed at a root that is not an initramfs: the
// arguments are meant for dracut in the initramfs, never for a host's /etc.
var ErrNotInitrd = errors.New("not an initramfs (no /" + InitrdRelease + ")")

// CountedEntry returns the entry path systemd-boot stored in LoaderBootCountPath under efivars,
// and false when the variable is absent: no EFI (BIOS, or a direct kernel boot), another boot
// loader (GRUB), or an entry without a counter. The variable's presence is what counts: a value
// that does not decode still says the boot is on trial.
func CountedEntry(efivars string) (path string, ok bool, err error) {
	path, ok, err = efivar.ReadString(efivars, efivar.LoaderBootCountPath)
	if errors.Is(err, efivar.ErrMalformed) {
		return "", true, nil
	}
	return path, ok, err
}

// OnTrial says whether this boot is on trial, so that a failure ends in a reset rather than a
// shell: GRUB put TrialArgs on the kernel command line cmdline, or ArmTrialReboot armed them
// under root for systemd-boot.
func OnTrial(root, cmdline string) bool {
	if _, err := os.Stat(filepath.Join(root, TrialCmdline)); err == nil {
		return true
	}
	return strings.Contains(" "+strings.TrimSpace(cmdline)+" ", " rd.emergency=reboot ")
}

// ArmTrialReboot writes TrialArgs to root's TrialCmdline when systemd-boot booted a counted
// entry (CountedEntry of efivars), and returns that entry. root must be an initramfs
// (ErrNotInitrd otherwise). Running it again gives the same result.
func ArmTrialReboot(root, efivars string) (entry string, armed bool, err error) {
	if _, err := os.Stat(filepath.Join(root, InitrdRelease)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", false, ErrNotInitrd
		}
		return "", false, fmt.Errorf("checking for an initramfs: %w", err)
	}
	entry, ok, err := CountedEntry(efivars)
	if err != nil || !ok {
		return "", false, err
	}
	path := filepath.Join(root, TrialCmdline)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", false, fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(TrialArgs+"\n"), 0o644); err != nil {
		return "", false, fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", false, fmt.Errorf("writing %s: %w", path, err)
	}
	return strings.TrimSpace(entry), true, nil
}
