// Package generators holds the boot path: bootc-root-setup (cmd/bootc-root-setup, logic in
// rootsetup) assembles the deployment root in the initramfs, makes a failed initramfs reboot on
// a boot on trial under systemd-boot (as the initramfs's generator), and re-applies the
// deployment's read-only mounts on the booted host; bootc-systemd-generator
// (cmd/bootc-systemd-generator) runs early at every boot and enables the units the host's state
// calls for (the status hooks, the report of a failed finalize, the cleanup after a successful
// one). Both link only the standard library and small lib packages: they run before most of the
// system is up, the first in the initramfs.
package generators
