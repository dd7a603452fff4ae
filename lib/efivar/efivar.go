// Package efivar reads the EFI variables systemd-boot sets for the running system (the Boot
// Loader Interface): which boot loader started it, and which counted entry it booted.
package efivar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf16"
)

const (
	// DefaultDir is where the kernel shows the EFI variables (efivarfs).
	DefaultDir = "/sys/firmware/efi/efivars"
	// EnvDir names another directory laid out the same way (tests).
	EnvDir = "BOOTC_EFIVARS_DIR"
	// LoaderGUID is the vendor GUID of the Boot Loader Interface's variables.
	LoaderGUID = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
	// LoaderInfo is set by systemd-boot on every boot it starts ("systemd-boot 257.9"); without
	// it another boot loader (GRUB) started the system.
	LoaderInfo = "LoaderInfo"
	// LoaderBootCountPath is set by systemd-boot when the entry it booted carries a boot
	// counter: the entry file's path on the ESP after its rename.
	LoaderBootCountPath = "LoaderBootCountPath"
)

// ErrMalformed is returned (wrapped) for a variable that is not a string as systemd-boot writes
// them.
var ErrMalformed = errors.New("malformed EFI string variable")

// Dir is the directory to read: dir when set, else $BOOTC_EFIVARS_DIR, else DefaultDir.
func Dir(dir string) string {
	switch {
	case dir != "":
		return dir
	case os.Getenv(EnvDir) != "":
		return os.Getenv(EnvDir)
	}
	return DefaultDir
}

// Path is the file of a Boot Loader Interface variable in dir.
func Path(dir, name string) string { return filepath.Join(dir, name+"-"+LoaderGUID) }

// ReadString reads a Boot Loader Interface variable holding a string: efivarfs shows 4 bytes of
// attributes, then the value, UTF-16LE with an optional terminating NUL. ok is false when the
// variable (or the directory: a system booted without EFI) is absent.
func ReadString(dir, name string) (value string, ok bool, err error) {
	data, err := os.ReadFile(Path(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading EFI variable %s: %w", name, err)
	}
	if len(data) < 4 || len(data)%2 != 0 {
		return "", false, fmt.Errorf("reading EFI variable %s: %w: %d bytes, want 4 bytes of attributes and UTF-16 text", name, ErrMalformed, len(data))
	}
	data = data[4:]
	units := make([]uint16, 0, len(data)/2)
	for i := 0; i+1 < len(data); i += 2 {
		u := binary.LittleEndian.Uint16(data[i:])
		if u == 0 {
			break
		}
		units = append(units, u)
	}
	return string(utf16.Decode(units)), true, nil
}

// Encode is a string variable as efivarfs shows it (attributes non-volatile, boot service and
// runtime access; UTF-16LE with a terminating NUL, as systemd-boot writes it), for tests and
// tools that prepare a directory of variables.
func Encode(value string) []byte {
	out := []byte{0x07, 0, 0, 0}
	for _, u := range utf16.Encode([]rune(value + "\x00")) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	return out
}
