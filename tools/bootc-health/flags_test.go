package main

import (
	"testing"

	"gobootc.dev/lib/cli"
)

// healthFlags says what each flag of each command changes, or that the command refuses it; a
// flag added to the grammar fails the test until it has an entry here.
var healthFlags = map[string]string{
	"check --sysroot": "physical root: the booted deployment's record, the boot entries a fallback rewrites, the failed images, the state where the health record is kept",
	"check --run-dir": "per-boot state directory: the booted marker, where health.json and the fallback note are written",
	"check --cmdline": "command line the booted deployment is found from",
	"check --efivars": "EFI variables telling whether systemd-boot booted the host (else GRUB's grubenv counts)",
	"check --root":    "root whose checks and greenboot.conf are read, and whose run/motd.d gets the login message",
	"check --timeout": "time each check runs before it is killed with its processes",

	"bless --sysroot": "physical root: the booted deployment's entry to bless, grubenv, the failed images, the state where the record is kept",
	"bless --run-dir": "per-boot state directory: the booted marker, health.json gets the assessment",
	"bless --cmdline": "command line the booted deployment is found from",
	"bless --efivars": "EFI variables telling whether systemd-boot booted the host and counted this boot",
	"bless --root":    "root whose green.d hooks and greenboot.conf are read, and whose run/motd.d gets the login message",
	"bless --timeout": "time each green.d hook runs before it is killed with its processes",

	"red --sysroot":        "physical root: the entries and grubenv that say whether the deployment is on trial, the state where the record is kept",
	"red --run-dir":        "per-boot state directory: the booted marker, health.json gets the assessment",
	"red --cmdline":        "command line the booted deployment is found from",
	"red --efivars":        "EFI variables telling whether systemd-boot booted the host (else GRUB's grubenv counts)",
	"red --root":           "root whose red.d hooks and greenboot.conf are read, and whose run/motd.d gets the login message",
	"red --timeout":        "time each red.d hook runs before it is killed with its processes",
	"red --reboot-command": "command run to reboot the host while its deployment is on trial",

	"list --sysroot": cli.NotSupported,
	"list --run-dir": cli.NotSupported,
	"list --cmdline": cli.NotSupported,
	"list --efivars": cli.NotSupported,
	"list --root":    "root whose checks and hooks are listed",

	"persist --sysroot": "physical root whose deployment state receives the record",
	"persist --run-dir": "per-boot state directory the record is read from",
	"persist --cmdline": cli.NotSupported,
	"persist --efivars": cli.NotSupported,

	"fallback --sysroot": "physical root whose entries are rewritten and whose failed images get the failed one",
	"fallback --run-dir": "per-boot state directory: the booted marker, and where the fallback note is written",
	"fallback --cmdline": "command line the booted deployment is found from",
	"fallback --efivars": "EFI variables telling which boot loader fell back",

	"bless-entry --sysroot": "physical root whose booted deployment's entry and grubenv trial are ended",
	"bless-entry --run-dir": "per-boot state directory: the booted marker",
	"bless-entry --cmdline": "command line the booted deployment is found from",
	"bless-entry --efivars": cli.NotSupported,
}

func TestEveryFlagDoesSomething(t *testing.T) {
	for _, p := range cli.CheckFlagTable("bootc-health", func() any { return &CLI{} }, healthFlags) {
		t.Error(p)
	}
}
