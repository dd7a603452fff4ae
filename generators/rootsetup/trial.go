package rootsetup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf16"
)

// The initramfs of a boot on trial: see "On a boot on trial" in the package documentation.

// Where systemd-boot's variables are and what they are called.
const (
	// DefaultEFIVars is where the kernel shows the EFI variables (efivarfs).
	DefaultEFIVars = "/sys/firmware/efi/efivars"
	// LoaderGUID is the vendor GUID of the Boot Loader Interface's variables.
	LoaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
	// BootCountPathVar is set by systemd-boot only when the entry it booted carries a boot
	// counter; it holds that entry's path on the ESP.
	BootCountPathVar = "LoaderBootCountPath-" + LoaderGUID
)

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

// CountedEntry returns the entry path systemd-boot stored in BootCountPathVar under efivars,
// and false when the variable is absent: no EFI (BIOS, or a direct kernel boot), another boot
// loader (GRUB), or an entry without a counter.
func CountedEntry(efivars string) (path string, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(efivars, BootCountPathVar))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading the EFI variable %s: %w", BootCountPathVar, err)
	}
	return decodeUTF16Var(data), true, nil
}

// decodeUTF16Var decodes an efivarfs file holding a string: four bytes of attributes, then
// UTF-16LE text, NUL-terminated by systemd-boot. A malformed value decodes to what it holds:
// the variable's presence is what counts.
func decodeUTF16Var(data []byte) string {
	if len(data) < 4 {
		return ""
	}
	data = data[4:]
	u := make([]uint16, 0, len(data)/2)
	for i := 0; i+1 < len(data); i += 2 {
		c := binary.LittleEndian.Uint16(data[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return string(utf16.Decode(u))
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
