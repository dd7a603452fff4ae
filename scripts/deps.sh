#!/usr/bin/env bash
# deps.sh: make this Debian 12 host ready to build and test the project.
#
# Idempotent and unattended (CI=true, no stdin): installs the missing apt
# packages, merges the podman settings this host needs into
# /etc/containers/containers.conf (ulimits podman 4.3 can apply here, cgroupfs
# since systemd is not PID 1, runc, and netavark so the CNI config the podman
# package ships is never picked), and keeps the packaged registry's own config
# on loopback. Prints one line per change and nothing when all is in place.
set -euo pipefail

die() { echo "deps.sh: error: $*" >&2; exit 1; }
say() { echo "deps.sh: $*"; }

# All exist in bookworm main. Recommends are skipped, so podman's bridge
# network needs netavark (its network stack is a virtual dependency) and
# iptables (netavark's firewall driver) named here; busybox-static gives tests
# a tiny root filesystem to import as a local image. Rootful podman on the
# kernel's overlay needs neither uidmap nor fuse-overlayfs.
PACKAGES=(
  podman skopeo runc netavark docker-registry mmdebstrap
  qemu-system-x86 qemu-utils ovmf
  dosfstools xfsprogs btrfs-progs e2fsprogs erofs-utils
  gdisk fdisk util-linux parted mtools grub-pc-bin grub2-common udev
  jq systemd gnupg curl busybox-static iptables
)

# Not read from CONTAINERS_CONF: podman gives that variable its own meaning.
containers_conf=/etc/containers/containers.conf
REGISTRY_CONF=/etc/docker/registry/config.yml

missing_packages() {
  local status p
  # dpkg-query exits 1 if any name is unknown to dpkg; the known ones are still listed.
  status=$(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${PACKAGES[@]}" 2>/dev/null || true)
  for p in "${PACKAGES[@]}"; do
    grep -qE "^${p} ii" <<<"$status" || echo "$p"
  done
}

# logged LOG WHAT COMMAND...: runs COMMAND with its output in LOG. On a terminal a line stands
# in for that output while it runs, rewritten every second: the seconds so far and LOG's last
# line; it is erased at the end, so a terminal shows what CI logs show.
logged() {
  local log=$1 what=$2 pid rc=0 t0=$SECONDS
  shift 2
  if [[ ! -t 1 ]]; then
    "$@" >"$log" 2>&1 </dev/null
    return
  fi
  "$@" >"$log" 2>&1 </dev/null &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    printf '\r\033[Kdeps.sh: %s, %ds: %s' "$what" $((SECONDS - t0)) "$(tail -n 1 "$log" | tr -d '\r' | cut -c1-60)"
    sleep 1
  done
  wait "$pid" || rc=$?
  printf '\r\033[K'
  return "$rc"
}

install_packages() {
  local -a missing
  local log
  mapfile -t missing < <(missing_packages)
  ((${#missing[@]})) || return 0
  export DEBIAN_FRONTEND=noninteractive
  log=$(mktemp)
  # The lists are refreshed only when something is missing, and only once.
  if ! logged "$log" "apt-get update" apt-get update -q -o DPkg::Lock::Timeout=300; then
    tail -n 30 "$log" >&2; rm -f "$log"; die "apt-get update failed"
  fi
  if ! logged "$log" "apt-get install ${#missing[@]} packages" \
      apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}"; then
    tail -n 30 "$log" >&2; rm -f "$log"; die "apt-get install ${missing[*]} failed"
  fi
  rm -f "$log"
  local -a still
  mapfile -t still < <(missing_packages)
  ((${#still[@]} == 0)) || die "still not installed after apt-get install: ${still[*]}"
  say "installed packages: ${missing[*]}"
}

# toml_get FILE SECTION KEY prints the line that sets KEY in [SECTION], if any.
toml_get() {
  awk -v sec="$2" -v key="$3" '
    /^[ \t]*\[/ { insec = ($0 ~ "^[ \t]*\\[" sec "\\][ \t]*(#.*)?$"); next }
    insec && $0 ~ "^[ \t]*" key "[ \t]*=" { print; exit }
  ' "$1"
}

# toml_set FILE SECTION KEY VALUE rewrites FILE so that [SECTION] sets KEY to
# VALUE on one line right under the header, dropping any earlier setting of
# KEY there (a multi-line array included); the section is appended if absent.
# Everything else in the file is kept as it was.
toml_set() {
  local file=$1 sec=$2 key=$3 value=$4 tmp
  tmp=$(mktemp "$file.XXXXXX")
  awk -v sec="$sec" -v key="$key" -v want="$key = $value" '
    skip { if ($0 ~ /\]/) skip = 0; next }
    /^[ \t]*\[/ {
      insec = ($0 ~ "^[ \t]*\\[" sec "\\][ \t]*(#.*)?$")
      print
      if (insec && !done) { print want; done = 1 }
      next
    }
    insec && $0 ~ "^[ \t]*" key "[ \t]*=" {
      rest = $0; sub(/^[^=]*=[ \t]*/, "", rest)
      if (rest ~ /^\[/ && rest !~ /\]/) skip = 1
      next
    }
    { print }
    END { if (!done) { print ""; print "[" sec "]"; print want } }
  ' "$file" >"$tmp" || { rm -f "$tmp"; die "rewriting $file failed"; }
  chmod --reference="$file" "$tmp"
  mv -f "$tmp" "$file"
}

ensure_toml() {
  local file=$1 sec=$2 key=$3 value=$4 have
  have=$(toml_get "$file" "$sec" "$key")
  # Whitespace is not significant around "=" or between array items.
  [[ "${have//[[:space:]]/}" == "${key}=${value//[[:space:]]/}" ]] && return 0
  toml_set "$file" "$sec" "$key" "$value"
  say "set [$sec] $key = $value in $file"
}

configure_podman() {
  if [[ ! -e $containers_conf ]]; then
    mkdir -p "$(dirname "$containers_conf")"
    cat >"$containers_conf.tmp" <<'CONF'
# Written by the project's scripts/deps.sh; other settings may be added freely.
[containers]
default_ulimits = ["nofile=4096:4096","nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"

[network]
network_backend = "netavark"
CONF
    mv -f "$containers_conf.tmp" "$containers_conf"
    say "wrote $containers_conf"
    return 0
  fi
  ensure_toml "$containers_conf" containers default_ulimits '["nofile=4096:4096","nproc=4096:4096"]'
  ensure_toml "$containers_conf" engine cgroup_manager '"cgroupfs"'
  ensure_toml "$containers_conf" engine runtime '"runc"'
  ensure_toml "$containers_conf" network network_backend '"netavark"'
}

# The package's default config listens on every interface; tests run their
# own instance through scripts/registry.sh, and this keeps the packaged one
# on loopback too should anything start it.
configure_registry() {
  [[ -f $REGISTRY_CONF ]] || return 0
  if grep -qE '^[[:space:]]+addr:[[:space:]]*:[0-9]+[[:space:]]*$' "$REGISTRY_CONF"; then
    sed -i -E 's/^([[:space:]]+addr:[[:space:]]*):([0-9]+)[[:space:]]*$/\1127.0.0.1:\2/' "$REGISTRY_CONF"
    say "bound the packaged registry in $REGISTRY_CONF to 127.0.0.1"
    # Without a policy-rc.d the package's postinst may already have started it
    # on every interface; a restart picks up the loopback address.
    if [[ -x /etc/init.d/docker-registry ]] && /etc/init.d/docker-registry status >/dev/null 2>&1; then
      /etc/init.d/docker-registry restart >/dev/null 2>&1 || die "restarting the packaged registry failed"
      say "restarted the packaged registry on 127.0.0.1"
    fi
  fi
}

main() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (apt-get and /etc/containers need it)"
  command -v dpkg-query >/dev/null || die "dpkg-query not found: only Debian hosts are supported"
  install_packages
  configure_podman
  configure_registry
}

# Sourcing the file (as the config-merge check does) defines the functions only.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
