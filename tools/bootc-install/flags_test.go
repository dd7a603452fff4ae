package main

import (
	"testing"

	"gobootc.dev/lib/cli"
)

// commonFlags are the flags every install command shares (Common), and what each changes.
var commonFlags = map[string]string{
	"--source-imgref":               "image installed instead of this container's own",
	"--target-imgref":               "image the installed system tracks for updates",
	"--target-transport":            "transport of --target-imgref",
	"--enforce-container-sigpolicy": "the image must verify, now and on every update",
	"--skip-fetch-check":            "the target image is not checked for being fetchable",
	"--karg":                        "kernel arguments added",
	"--karg-delete":                 "kernel arguments removed",
	"--root-ssh-authorized-keys":    "root's SSH keys installed through tmpfiles.d",
	"--stateroot":                   "stateroot installed into",
	"--bootloader":                  "boot loader installed",
	"--bound-images":                "bound images copied from the host's storage or pulled",
	"--config-root":                 "root the install configuration is read from",
	"--containerenv":                "file the running container's image is read from",

	"--run-fetch-check":                  "the default: the target image is checked for being fetchable",
	"--target-no-signature-verification": "the default: updates are not verified",
	"--disable-selinux":                  cli.NotSupported,
	"--bootupd-skip-boot-uuid":           cli.NotSupported,
	"--composefs-backend":                cli.NotSupported,
	"--allow-missing-verity":             cli.NotSupported,
	"--uki-addon":                        cli.NotSupported,
	"--experimental-unified-storage":     cli.NotSupported,
}

// installFlags says what each flag of each command changes; a flag added to the grammar fails
// the test until it has an entry here (or is refused, and marked cli.NotSupported).
func installFlags() map[string]string {
	table := map[string]string{
		"to-disk --wipe":          "existing partitions and filesystems erased",
		"to-disk --filesystem":    "root filesystem type",
		"to-disk --root-size":     "size of the root partition",
		"to-disk --block-setup":   "block setup (direct only)",
		"to-disk --via-loopback":  "DEVICE is an image file attached to a loop device",
		"to-disk --generic-image": "both GRUB and systemd-boot installed; no firmware variables",
		"to-disk --skip-finalize": "no trim and freeze of the new filesystem",

		"to-filesystem --root-mount-spec":         "root= of the kernel command line",
		"to-filesystem --boot-mount-spec":         "fstab source of a separate /boot",
		"to-filesystem --replace":                 "ROOT wiped first, or kept alongside",
		"to-filesystem --skip-finalize":           "no trim and freeze of ROOT",
		"to-filesystem --acknowledge-destructive": "the running system's own root accepted as ROOT",

		"to-existing-root --root-mount-spec":         "root= of the kernel command line",
		"to-existing-root --acknowledge-destructive": "no 20-second wait before installing",
		"to-existing-root --replace":                 "alongside, the only mode: the existing system is kept",
		"to-existing-root --cleanup":                 cli.NotSupported,
		"to-existing-root --generic-image":           cli.NotSupported,
		"to-filesystem --generic-image":              cli.NotSupported,

		"print-configuration --all":         "kernel arguments included",
		"print-configuration --config-root": "root the install configuration is read from",
	}
	for _, cmd := range []string{"to-disk", "to-filesystem", "to-existing-root"} {
		for flag, what := range commonFlags {
			table[cmd+" "+flag] = what
		}
	}
	return table
}

func TestEveryFlagDoesSomething(t *testing.T) {
	for _, p := range cli.CheckFlagTable(name, func() any { return &CLI{} }, installFlags()) {
		t.Error(p)
	}
}
