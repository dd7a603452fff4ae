#!/usr/bin/env bash
# The main job, narrated: the bootc front and its status tool on this host and on a sample
# physical root. Usage: scripts/demo.sh BINDIR
set -euo pipefail
bin=$(cd "${1:-bin}" && pwd)
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold= plain=; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
run() { printf '$ %s\n' "$*"; "$@"; }

say "The front lists the verbs; each one hands its work to a step tool"
run "$bin/bootc" --help

say "This machine is not deployed via bootc, so status reports an empty host"
run "$bin/bootc" status --format humanreadable
run "$bin/bootc" status --format json

say "A sample physical root: v2 booted, v3 staged, v1 kept for rollback"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
phys=$root/phys run=$root/run
mkdir -p "$phys/bootc/deploy/default" "$phys/boot/loader/entries" "$run"
chmod 0700 "$phys/bootc"
n=0
for v in 1 2 3; do
	n=$((n + 1))
	id=$(printf '%012d' "$v").0
	digest=sha256:$(printf 'demo-v%s' "$v" | sha256sum | cut -d' ' -f1)
	cat > "$phys/bootc/deploy/default/$id.json" <<JSON
{"version":1,"stateroot":"default","id":"$id",
 "image":{"ref":{"image":"127.0.0.1:5000/demo-os:latest","transport":"registry"},
          "manifestDigest":"$digest","architecture":"amd64","version":"$v",
          "created":"2026-11-0${v}T10:00:00Z"},
 "kernel":"6.12.0","bootDigest":"sha256:00","kargs":"rw console=ttyS0","created":"2026-11-0${v}T10:00:00Z"}
JSON
done
for pair in "2:000000000002.0" "1:000000000001.0"; do
	cat > "$phys/boot/loader/entries/bootc-default-${pair%%:*}.conf" <<CONF
title Demo OS
version ${pair%%:*}
linux /bootc/demo/vmlinuz
initrd /bootc/demo/initramfs.img
options rw console=ttyS0 bootc.deployment=default/${pair#*:}
CONF
done
echo '{"version":1,"stateroot":"default","id":"000000000002.0"}' > "$run/booted.json"
echo '{"version":1,"stateroot":"default","id":"000000000003.0","created":"2026-11-03T10:00:00Z"}' > "$run/staged.json"
export BOOTC_SYSROOT=$phys BOOTC_RUN_DIR=$run
run "$bin/bootc" status --format humanreadable
run "$bin/bootc" status --format yaml --booted
run "$bin/bootc" status --json

say "Verbs whose steps are not in this build fail clearly instead of pretending"
run "$bin/bootc" upgrade || echo "(exit status $?)"
