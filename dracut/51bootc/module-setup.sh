#!/bin/bash
# 51bootc: sets up the bootc deployment named by bootc.deployment= as the root the initramfs
# switches into (bootc-root-setup.service, after sysroot.mount, before initrd-root-fs.target).
# Images opt in with add_dracutmodules+=" bootc "; it is never picked automatically.
#
# The same binary is the initramfs's generator bootc-root-setup-generator: when systemd-boot
# booted an entry on trial (it sets the EFI variable LoaderBootCountPath), it writes
# "rd.shell=0 rd.emergency=reboot" to /run/bootc/trial-cmdline.conf, which dracut reads through
# the link /etc/cmdline.d/50-bootc-trial.conf (dangling, so ignored, on other boots): a boot
# that fails here reboots and the boot loader counts the try, instead of waiting in the
# emergency shell. It reads the variables from efivarfs, which systemd mounts before it runs
# generators (the systemd module installs the efivarfs module).

check() {
    return 255
}

depends() {
    echo systemd
    return 0
}

install() {
    local bin=/usr/libexec/bootc/bootc-root-setup
    if [[ ! -x $dracutsysrootdir$bin ]]; then
        derror "bootc: $bin is missing; install bootc before building the initramfs"
        return 1
    fi
    inst_simple "$bin"
    inst_simple "$systemdsystemunitdir/bootc-root-setup.service"
    $SYSTEMCTL -q --root "$initdir" add-wants initrd-root-fs.target bootc-root-setup.service
    mkdir -p "$initdir$systemdutildir/system-generators" "$initdir/etc/cmdline.d"
    ln_r "$bin" "$systemdutildir/system-generators/bootc-root-setup-generator"
    ln -sfn /run/bootc/trial-cmdline.conf "$initdir/etc/cmdline.d/50-bootc-trial.conf"
}
