#!/usr/bin/env bash
# check-host.sh: prove the tools scripts/deps.sh set up really work here.
#
# Runs podman (runc, cgroupfs) on a busybox image built locally, pushes it to
# a registry started by scripts/registry.sh with skopeo, pulls it back with
# skopeo and with podman through a registries.conf scoped to this run, and
# formats and mounts an xfs filesystem on a loop device. Leaves nothing behind.
# Prints one line per check; exits non-zero at the first failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/check-host.XXXXXX)
image=localhost/check-host-busybox:$$
port=${CHECK_HOST_PORT:-}
loopdev=

die() { echo "check-host.sh: FAIL: $*" >&2; exit 1; }
ok() { echo "check-host.sh: ok: $*"; }

cleanup() {
  set +e
  mountpoint -q "$work/mnt" && umount "$work/mnt"
  [[ -n $loopdev ]] && losetup -d "$loopdev"
  [[ -n $port ]] && "$here/registry.sh" stop "$port" "$work/registry"
  podman rmi -f "$image" "127.0.0.1:$port/check-host:1" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || die "must run as root"

rt=$(podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.CgroupManager}}' 2>"$work/err") ||
  die "podman info: $(tail -n1 "$work/err")"
[[ $rt == "runc cgroupfs" ]] || die "podman uses runtime/cgroup manager \"$rt\", want \"runc cgroupfs\" (run scripts/deps.sh)"
ok "podman info: $rt"

mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/busybox" || die "no /bin/busybox (busybox-static; run scripts/deps.sh)"
for applet in sh echo cat; do ln -s busybox "$work/rootfs/bin/$applet"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
podman import -q --change 'CMD ["/bin/sh"]' "$work/rootfs.tar" "$image" >/dev/null || die "podman import"
out=$(podman run --rm --runtime runc --network none "$image" sh -c 'echo ran; ulimit -n') || die "podman run"
[[ $out == $'ran\n4096' ]] || die "podman run printed \"$out\", want ran and nofile 4096"
ok "podman run --runtime runc on a local image (nofile limit 4096)"

if [[ -z $port ]]; then
  for p in $(seq 5100 5199); do
    ss -Hltn "sport = :$p" | grep -q . || { port=$p; break; }
  done
  [[ -n $port ]] || die "no free port in 5100-5199"
fi
"$here/registry.sh" start "$port" "$work/registry"
"$here/registry.sh" status "$port" "$work/registry" >/dev/null || die "registry status after start"
ok "registry serving on 127.0.0.1:$port"

skopeo copy -q "containers-storage:$image" "oci:$work/oci:img" 2>"$work/err" || die "skopeo copy to oci: $(tail -n1 "$work/err")"
skopeo copy -q --dest-tls-verify=false "oci:$work/oci:img" "docker://127.0.0.1:$port/check-host:1" 2>"$work/err" ||
  die "skopeo push: $(tail -n1 "$work/err")"
skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$port/check-host:1" "oci:$work/back:img" 2>"$work/err" ||
  die "skopeo pull: $(tail -n1 "$work/err")"
want=$(jq -r '.manifests[0].digest' "$work/oci/index.json")
got=$(jq -r '.manifests[0].digest' "$work/back/index.json")
[[ $want == "$got" ]] || die "pulled manifest $got, pushed $want"
ok "skopeo push and pull round trip ($want)"

cat >"$work/registries.conf" <<CONF
[[registry]]
location = "127.0.0.1:$port"
insecure = true
CONF
CONTAINERS_REGISTRIES_CONF=$work/registries.conf podman pull -q "127.0.0.1:$port/check-host:1" >/dev/null 2>"$work/err" ||
  die "podman pull with a scoped registries.conf: $(tail -n1 "$work/err")"
out=$(podman run --rm --network none "127.0.0.1:$port/check-host:1" echo pulled) || die "podman run of the pulled image"
[[ $out == pulled ]] || die "pulled image printed \"$out\""
ok "podman pull from the registry through CONTAINERS_REGISTRIES_CONF"

truncate -s 300M "$work/disk.img"
loopdev=$(losetup -f --show "$work/disk.img") || die "losetup"
mkfs.xfs -q "$loopdev" || die "mkfs.xfs on $loopdev"
mkdir "$work/mnt"
mount "$loopdev" "$work/mnt" || die "mount $loopdev"
echo data >"$work/mnt/f"
umount "$work/mnt"
losetup -d "$loopdev"
loopdev=
ok "loop device, mkfs.xfs, mount, umount, detach"
