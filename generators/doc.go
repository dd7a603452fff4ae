// Package generators holds the boot path: bootc-root-setup (cmd/bootc-root-setup, logic in
// rootsetup) assembles the deployment root in the initramfs and re-applies its read-only mounts
// on the booted host; systemd generators for the booted host will live here too.
package generators
