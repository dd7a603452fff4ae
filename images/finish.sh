#!/bin/sh
# finish.sh: enables the units the sample image boots with (the update timer among them), locks
# root and builds the initramfs (with the bootc dracut module) next to the kernel.
set -eu
set -- /usr/lib/modules/*
kver=${1##*/}
[ -x /usr/libexec/bootc/bootc-root-setup ] || { echo "finish.sh: bootc-root-setup not installed" >&2; exit 1; }
[ -f /usr/lib/dracut/modules.d/51bootc/module-setup.sh ] || { echo "finish.sh: dracut module 51bootc not installed" >&2; exit 1; }

systemctl enable qemu-guest-agent.service serial-getty@ttyS0.service bootc-remount.service systemd-networkd.service
# Like the usual bootc base images: updates are fetched and applied on a timer.
systemctl enable bootc-fetch-apply-updates.timer
# The health step: checks before boot-complete.target, blessing after it, the RED path.
systemctl enable bootc-health.service bootc-health-bless.service bootc-health-red.service
# A first boot must never stop at a prompt on the console.
systemctl mask systemd-firstboot.service
# No password login: tests drive the guest through the guest agent.
usermod -L root
# Every machine made from the image gets its own id on first boot.
: >/etc/machine-id
mkdir -p /sysroot

dracut --quiet --no-hostonly --force --kver "$kver" "/usr/lib/modules/$kver/initramfs.img"
chmod 0644 "/usr/lib/modules/$kver/initramfs.img"
rm -rf /var/cache/* /var/log/* /tmp/* /var/tmp/*
