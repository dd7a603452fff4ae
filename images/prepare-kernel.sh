#!/bin/sh
# prepare-kernel.sh: moves the kernel where bootc looks for it and keeps only the modules a
# virtual machine or a USB stick boot needs (virtio, block, the filesystems, USB storage, loop).
set -eu
set -- /usr/lib/modules/*
[ $# -eq 1 ] || { echo "prepare-kernel.sh: want exactly one kernel, found: $*" >&2; exit 1; }
kver=${1##*/}
mods=/usr/lib/modules/$kver
mv "/boot/vmlinuz-$kver" "$mods/vmlinuz"
rm -rf /boot/* /vmlinuz* /initrd.img*

want="virtio virtio_ring virtio_pci virtio_mmio virtio_blk virtio_scsi virtio_net virtio_console
virtio_balloon virtio_rng sd_mod sr_mod scsi_mod nvme ahci loop
ext4 xfs btrfs vfat fat erofs overlay squashfs isofs efivarfs
nls_cp437 nls_iso8859_1 nls_utf8 nls_ascii crc32c_generic crc32c_intel libcrc32c
usb_storage uas xhci_pci xhci_hcd ehci_pci ehci_hcd"
keep=$(mktemp)
for m in $want; do
  modprobe -S "$kver" --show-depends "$m" 2>/dev/null || echo "prepare-kernel.sh: no module $m (built in or absent)" >&2
done | awk '$1 == "insmod" { print $2 }' | sed 's|^/lib/modules/|/usr/lib/modules/|' | sort -u >"$keep"
# modprobe prints /lib paths on a merged /usr: make sure the list names the files find sees.
for m in ext4 virtio_blk; do
  grep -q "/$m\.ko" "$keep" || { echo "prepare-kernel.sh: module $m not in the keep list" >&2; exit 1; }
done
before=$(du -sk "$mods" | cut -f1)
find "$mods/kernel" -name '*.ko*' | sort | comm -23 - "$keep" | xargs rm -f
find "$mods/kernel" -type d -empty -delete
depmod "$kver"
echo "prepare-kernel.sh: kept $(wc -l <"$keep") modules; $mods: ${before} KiB -> $(du -sk "$mods" | cut -f1) KiB"
rm -f "$keep"
