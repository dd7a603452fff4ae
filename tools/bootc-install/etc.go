package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"

	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// SSHKeysTmpfile is the tmpfiles.d entry --root-ssh-authorized-keys writes into /etc.
const SSHKeysTmpfile = "tmpfiles.d/bootc-root-ssh.conf"

// bootMountpoint is where the booted host mounts a separate /boot or the ESP: where every bootc
// tool looks for it (the physical root's boot/, layout Boot). /boot shows the same tree.
const bootMountpoint = "/sysroot/boot"

// sshKeysTmpfile renders the tmpfiles.d lines that install root's authorized keys at boot:
// "f~" takes the content base64-encoded and writes it only if the file does not exist, so the
// keys become the machine's own and later edits stay.
func sshKeysTmpfile(keys []byte) string {
	return "d /root/.ssh 0700 root root -\n" +
		"f~ /root/.ssh/authorized_keys 600 root root - " + base64.StdEncoding.EncodeToString(keys) + "\n"
}

// fstabLines mounts a separate /boot (or the ESP serving as /boot) where bootc's tools write
// boot entries, and shows it at /boot too.
func fstabLines(t *target) string {
	spec, fstype, opts := "", "", ""
	switch {
	case t.fatBoot() && t.esp != nil:
		spec, fstype, opts = "UUID="+t.esp.uuid, "vfat", "umask=0077,shortname=winnt"
	case t.fatBoot() || t.bootSpec != "":
		spec, fstype, opts = t.bootSpec, "auto", "defaults"
		if t.fatBoot() {
			fstype, opts = "vfat", "umask=0077,shortname=winnt"
		}
	}
	if spec == "" {
		return ""
	}
	return fmt.Sprintf("%s %s %s %s 0 2\n%s /boot none bind,x-systemd.requires-mounts-for=%s 0 0\n",
		spec, bootMountpoint, fstype, opts, bootMountpoint, bootMountpoint)
}

// writeEtc makes the deployment's writable /etc: a copy of the image's (owners, modes,
// extended attributes and hard links kept), plus the root SSH keys entry and the fstab lines
// this install needs.
func writeEtc(r layout.Root, d *record.Deployment, t *target, keys []byte) error {
	src := r.PristineEtc(d.Stateroot, d.ID)
	dst := r.Etc(d.Stateroot, d.ID)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("creating /etc: %w", err)
	}
	if out, err := exec.Command("cp", "-a", "-T", src, dst).CombinedOutput(); err != nil {
		return fmt.Errorf("copying the image's /etc: %s", oneLine(out, err))
	}
	if keys != nil {
		p := filepath.Join(dst, SSHKeysTmpfile)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("writing root's SSH keys: %w", err)
		}
		if err := renameio.WriteFile(p, []byte(sshKeysTmpfile(keys)), 0o644); err != nil {
			return fmt.Errorf("writing root's SSH keys: %w", err)
		}
	}
	if lines := fstabLines(t); lines != "" {
		p := filepath.Join(dst, "fstab")
		old, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("writing /etc/fstab: %w", err)
		}
		content := string(old)
		if content != "" && !strings.HasSuffix(content, "\n") {
			content += "\n"
		}
		content += lines
		if err := renameio.WriteFile(p, []byte(content), 0o644); err != nil {
			return fmt.Errorf("writing /etc/fstab: %w", err)
		}
	}
	return nil
}
