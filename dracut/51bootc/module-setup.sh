#!/bin/bash
# 51bootc: sets up the bootc deployment named by bootc.deployment= as the root the initramfs
# switches into (bootc-root-setup.service, after sysroot.mount, before initrd-root-fs.target).
# Images opt in with add_dracutmodules+=" bootc "; it is never picked automatically.

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
}
