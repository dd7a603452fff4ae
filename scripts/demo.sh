#!/usr/bin/env bash
# The main job, narrated: the sample image's lifecycle in a QEMU virtual machine. It builds the
# sample images, publishes them on a registry on 127.0.0.1:5000, installs v1 to a disk image from
# inside its own container (bootc install to-disk --via-loopback), boots it, upgrades to v2
# (blessed by its health checks), reboots, rolls back, cuts the power during finalize, then
# applies two bad updates (a failing required check, a kernel panic) that fall back by
# themselves, showing bootc status, the merged /etc and /proc/cmdline at each step. The same
# steps are the VM test TestLifecycle.
#
# Usage: scripts/demo.sh [-bootloader grub|systemd] [-power-cut=false] [-bad-updates=false] [-artifacts DIR]
# Needs root and what scripts/deps.sh installs (make demo runs it first).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "demo.sh: error: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "must run as root (podman, loop devices, QEMU)"
command -v go >/dev/null || die "go not found"
cd "$repo"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
# Built first so that compile output does not interleave with the narration.
go build -o "$bin/demo" ./tests/integration/cmd/demo || die "building the demo failed"
"$bin/demo" -repo "$repo" "$@"
