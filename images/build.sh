#!/usr/bin/env bash
# build.sh [v1|v2|all]: builds the sample bootable image localhost/bootc-sample:v1; for v2 (the
# default) also localhost/bootc-sample:v2 derived from it; for all also v3 (v2 binding two
# application images), v4 (v2 binding one of them), v5 (v4 with a changed file), v6 (v2 with a
# required health check that always fails), v7 (v2 whose kernel panics: kargs.d names an init
# the initramfs lacks) and the two application images, localhost/bootc-bound-app:a and :b. No
# registry is involved.
#
# The Debian base comes from mmdebstrap (base.sh) and is cached as a tarball in
# $BOOTC_TEST_CACHE (default /var/cache/bootc-test), keyed by a hash of packages.txt, base.sh
# and prepare-kernel.sh; its `podman import` is kept as localhost/bootc-sample-base:<key>, and
# bases with other keys are pruned. The project's tools come from
# `make install DESTDIR=<context>/rootfs`. An image whose build context (contents, not times) is
# unchanged is not rebuilt, so its digest stays the same across runs. Every build step runs with
# runc and without a network. Set BOOTC_SAMPLE_IMAGE to build under another name.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
cache=${BOOTC_TEST_CACHE:-/var/cache/bootc-test}
image=${BOOTC_SAMPLE_IMAGE:-localhost/bootc-sample}
target=${1:-v2}

die() { echo "build.sh: error: $*" >&2; exit 1; }
say() { echo "build.sh: $*" >&2; }
case $target in v1 | v2 | all) ;; *) die "unknown target \"$target\" (want v1, v2 or all)" ;; esac
[[ $(id -u) -eq 0 ]] || die "must run as root (mmdebstrap and rootful podman)"
for t in podman mmdebstrap make go sha256sum busybox; do
  command -v "$t" >/dev/null || die "$t not installed (run scripts/deps.sh)"
done

mkdir -p "$cache"
# One build at a time per cache: two would race on the tarball and the tags.
exec 9>"$cache/build.lock"
flock 9

start=$SECONDS
key=$(cat "$here/packages.txt" "$here/base.sh" "$here/prepare-kernel.sh" | sha256sum | cut -c1-16)
tarball=$cache/base-$key.tar
if [[ ! -s $tarball ]]; then
  say "building the base with mmdebstrap (key $key)"
  t0=$SECONDS
  rm -f "$tarball.tmp"
  "$here/base.sh" "$here/packages.txt" "$tarball.tmp" >"$cache/base-$key.log" 2>&1 ||
    { tail -n 30 "$cache/base-$key.log" >&2; die "mmdebstrap failed (log: $cache/base-$key.log)"; }
  mv -f "$tarball.tmp" "$tarball"
  say "base tarball built in $((SECONDS - t0))s: $(du -h "$tarball" | cut -f1)"
fi
base=localhost/bootc-sample-base:$key
for old in "$cache"/base-*.tar; do
  [[ -e $old && $old != "$tarball" ]] || continue
  rm -f "$old" "${old%.tar}.log"
  say "pruned $old"
done
podman images --format '{{.Repository}}:{{.Tag}}' localhost/bootc-sample-base | while read -r old; do
  [[ $old == "$base" ]] || podman rmi "$old" >/dev/null 2>&1 || true
done
if ! podman image exists "$base"; then
  podman import -q "$tarball" "$base" >/dev/null || die "podman import $tarball"
  say "imported $base"
fi

ctx=$(mktemp -d /tmp/bootc-sample.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
if ! make -s -C "$repo" install DESTDIR="$ctx/rootfs" >"$ctx/make.log" 2>&1; then
  # A tool that does not build must not block the boot tests: it is replaced by a stub that
  # says so, loudly here and in the image.
  tail -n 5 "$ctx/make.log" >&2
  say "WARNING: make install failed; building the tools one by one"
  rm -rf "$ctx/rootfs" "$ctx/bin"
  mkdir -p "$ctx/bin"
  # The same build tags as the Makefile's (containers/image needs them).
  goflags="-buildvcs=false -tags=$(tr -s ' \n' ',,' <"$repo/tools/bootc-fetch/TAGS" | sed 's/,$//')"
  for t in $(sed -n 's/^TOOLS *:= *//p' "$repo/Makefile" | sed 's/$(STEPS)//') \
    $(sed -n 's/^STEPS *:= *//p' "$repo/Makefile") bootc-root-setup; do
    pkg=./tools/$t
    [[ $t != bootc-root-setup ]] || pkg=./generators/cmd/bootc-root-setup
    if ! (cd "$repo" && CGO_ENABLED=0 GOFLAGS="$goflags" go build -trimpath -ldflags='-s -w' -o "$ctx/bin/$t" "$pkg") >>"$ctx/make.log" 2>&1; then
      say "WARNING: $t does not build; the image gets a stub"
      printf '#!/bin/sh\necho "%s: not built into this image (it did not compile)" >&2\nexit 1\n' "$t" >"$ctx/bin/$t"
      chmod 0755 "$ctx/bin/$t"
    fi
  done
  make -s -C "$repo" -o build install OUT="$ctx/bin" DESTDIR="$ctx/rootfs" >>"$ctx/make.log" 2>&1 ||
    { tail -n 30 "$ctx/make.log" >&2; die "make install failed"; }
fi
# The boot path's pieces, for as long as `make install` does not install them itself.
setup=$ctx/rootfs/usr/libexec/bootc/bootc-root-setup
if [[ ! -x $setup ]]; then
  (cd "$repo/generators" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$setup" ./cmd/bootc-root-setup) ||
    die "building bootc-root-setup"
fi
dracutdir=$ctx/rootfs/usr/lib/dracut/modules.d/51bootc
if [[ ! -f $dracutdir/module-setup.sh ]]; then
  install -d "$dracutdir"
  install -m 0755 "$repo"/dracut/51bootc/module-setup.sh "$dracutdir/"
fi
cp -a "$here/files" "$here/finish.sh" "$ctx/"

# tree_hash DIR FILE...: a digest of a build context (names, types, modes, owners, contents,
# not times) plus the extra files and words given, to skip a build that would change nothing.
tree_hash() {
  local dir=$1
  shift
  {
    (cd "$dir" && find . -printf '%p %y %m %U %G %l\n' | LC_ALL=C sort &&
      find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum)
    printf '%s\n' "$@"
  } | sha256sum | cut -c1-16
}

build() { # build TAG CONTAINERFILE CONTEXT HASH [ARGS...]
  local tag=$1 file=$2 dir=$3 hash=$4 t0=$SECONDS
  shift 4
  if [[ $(podman image inspect -f '{{index .Labels "bootc.sample.context"}}' "$tag" 2>/dev/null) == "$hash" ]]; then
    say "$tag is up to date"
    return 0
  fi
  podman build -q --runtime runc --network none -f "$file" -t "$tag" --label bootc.sample.context="$hash" "$@" "$dir" \
    >"$ctx/build.log" 2>&1 || { tail -n 40 "$ctx/build.log" >&2; die "podman build of $tag failed"; }
  say "built $tag in $((SECONDS - t0))s: $(podman image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.0f MiB", $1 / 1048576 }')"
}

build "$image:v1" "$here/Containerfile" "$ctx" "$(tree_hash "$ctx" "$(cat "$here/Containerfile")" "$base")" \
  --build-arg BASE="$base"

next() { # next VERSION FROM: a later sample image, its files/ in images/<VERSION> on top of FROM
  local v=$1 from=$image:$2
  build "$image:$v" "$here/Containerfile.next" "$here/$v" \
    "$(tree_hash "$here/$v" "$(cat "$here/Containerfile.next")" "$(podman image inspect -f '{{.Id}}' "$from")")" \
    --build-arg FROM="$from" --build-arg VERSION="${v#v}"
}
if [[ $target != v1 ]]; then
  next v2 v1
fi
if [[ $target == all ]]; then
  next v3 v2
  next v4 v2
  next v5 v4
  next v6 v2
  next v7 v2
  # The application images run busybox with nothing else in them: it must be the static build.
  mkdir "$ctx/app"
  cp "$(command -v busybox)" "$here/bound-app/Containerfile" "$ctx/app/"
  for app in a b; do
    build "localhost/bootc-bound-app:$app" "$ctx/app/Containerfile" "$ctx/app" \
      "$(tree_hash "$ctx/app" "$app")" --build-arg NAME="app-$app"
  done
fi
# Earlier builds of the sample images, now untagged, only take space; images still in use
# (a running container, a child image) refuse removal and stay.
podman images -q --filter dangling=true --filter label=bootc.sample.context | xargs -r podman rmi >/dev/null 2>&1 || true
say "done in $((SECONDS - start))s"
