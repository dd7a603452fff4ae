// Package generators holds the systemd generators: one runs in the initramfs to assemble the
// deployment root, one runs on the booted host to enable the units the state calls for.
package generators
