#!/usr/bin/env bash
# base.sh PACKAGES OUT.tar: the sample image's base root filesystem, made with mmdebstrap from
# Debian trixie, as a tarball for `podman import`.
#
# Documentation, man pages and translations are never unpacked (dpkg path filters), recommends
# are not installed, and the apt lists and caches are dropped. The kernel's postinst may build an
# initramfs under /boot; the image build replaces it with its own, so it is deleted here.
# prepare-kernel.sh (beside this script) moves the kernel to /usr/lib/modules and drops the
# modules the image does not need; done here rather than in the Containerfile, the dropped
# modules never reach an image layer.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

die() { echo "base.sh: error: $*" >&2; exit 1; }
(($# == 2)) || die "usage: base.sh PACKAGES OUT.tar"
pkgfile=$1 out=$2
[[ -r $pkgfile ]] || die "cannot read package list $pkgfile"
command -v mmdebstrap >/dev/null || die "mmdebstrap not installed (run scripts/deps.sh)"

mapfile -t pkgs < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$pkgfile" | grep -v '^$')
((${#pkgs[@]})) || die "no packages in $pkgfile"
include=$(IFS=,; echo "${pkgs[*]}")

mmdebstrap --variant=minbase --format=tar \
  --include="$include" \
  --aptopt='APT::Install-Recommends "false"' \
  --aptopt='APT::Install-Suggests "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/lintian/*' \
  --customize-hook='rm -f "$1"/boot/initrd.img* "$1"/initrd.img*' \
  --customize-hook="chroot \"\$1\" /bin/sh -s <'$here/prepare-kernel.sh'" \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/* "$1"/var/log/*.log "$1"/var/log/apt/*' \
  trixie "$out"
