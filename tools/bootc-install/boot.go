package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"gobootc.dev/lib/blockdev"
	"gobootc.dev/lib/durable"
	"gobootc.dev/lib/layout"
)

// Where an image keeps its boot loaders.
const (
	imageGrubModules = "usr/lib/grub/i386-pc"
	hostGrubModules  = "/usr/lib/grub/i386-pc"
	imageSystemdBoot = "usr/lib/systemd/boot/efi"
)

// installGrub writes GRUB's BIOS boot code to the disk: boot.img into the protective MBR and
// core.img into the BIOS boot partition, with its modules under bootDir/grub. The modules come
// from the image (so the GRUB that boots belongs to the OS it boots); the host's are used only
// for images without any.
func (in *installer) installGrub(ctx context.Context, bootDir, deployRoot string, t *target) error {
	if t.disk == "" {
		in.e.logf("No disk found under %s: GRUB's boot code was not installed (its configuration was written)", t.root)
		return nil
	}
	mods := filepath.Join(deployRoot, imageGrubModules)
	if _, err := os.Stat(filepath.Join(mods, "modinfo.sh")); err != nil {
		if _, err := os.Stat(filepath.Join(hostGrubModules, "modinfo.sh")); err != nil {
			return fmt.Errorf("installing GRUB: the image has no GRUB modules (%s) and neither has this system (%s)", "/"+imageGrubModules, hostGrubModules)
		}
		in.e.logf("The image has no GRUB modules (/%s); using this system's", imageGrubModules)
		mods = hostGrubModules
	}
	prog, err := exec.LookPath("grub-install")
	if err != nil {
		return fmt.Errorf("installing GRUB: grub-install not found (Debian package grub2-common)")
	}
	// GRUB maps only the disks it probes as BIOS drives by itself; a device map makes any disk
	// (a loop device, a disk another machine will boot from) its first drive. It only serves
	// this run.
	grubDir := layout.GrubDir(bootDir)
	if err := os.MkdirAll(grubDir, 0o755); err != nil {
		return fmt.Errorf("installing GRUB: %w", err)
	}
	devMap := filepath.Join(grubDir, "device.map")
	if err := os.WriteFile(devMap, []byte("(hd0) "+t.disk+"\n"), 0o644); err != nil {
		return fmt.Errorf("installing GRUB: %w", err)
	}
	defer os.Remove(devMap)
	args := []string{"--target=i386-pc", "--boot-directory=" + bootDir, "--directory=" + mods, t.disk}
	cmd := exec.CommandContext(ctx, prog, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("installing GRUB to %s: %s", t.disk, oneLine(out, err))
	}
	in.e.logf("Installed GRUB (BIOS) to %s", t.disk)
	return nil
}

// efiArch is the UEFI name of an image architecture.
func efiArch(goarch string) (string, error) {
	switch goarch {
	case "amd64", "":
		return "x64", nil
	case "arm64":
		return "aa64", nil
	}
	return "", fmt.Errorf("installing systemd-boot: no UEFI boot loader name for architecture %q", goarch)
}

// installSystemdBoot puts the image's systemd-boot on the ESP tree at boot: at the removable
// media path the firmware starts without any boot variable, and at systemd's own path.
func installSystemdBoot(boot, deployRoot, arch string) error {
	ea, err := efiArch(arch)
	if err != nil {
		return err
	}
	src := filepath.Join(deployRoot, imageSystemdBoot, "systemd-boot"+ea+".efi")
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("installing systemd-boot: the image has no /%s/systemd-boot%s.efi", imageSystemdBoot, ea)
	}
	for _, dst := range []string{
		layout.EFIRemovable(boot, ea),
		layout.EFISystemdBoot(boot, ea),
	} {
		if err := copyFile(src, dst); err != nil {
			return fmt.Errorf("installing systemd-boot: %w", err)
		}
	}
	conf := layout.LoaderConf(boot)
	if _, err := os.Stat(conf); os.IsNotExist(err) {
		// No default: systemd-boot then boots the first entry in BLS order, which is the one
		// bootc makes the default.
		if err := os.WriteFile(conf, []byte("timeout 5\neditor no\n"), 0o644); err != nil {
			return fmt.Errorf("installing systemd-boot: %w", err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return durable.Close(out)
}

// copyToESP copies the tree at stage to the root of the FAT filesystem on dev with mtools.
func copyToESP(ctx context.Context, stage, dev string) error {
	ents, err := os.ReadDir(stage)
	if err != nil {
		return fmt.Errorf("filling the ESP: %w", err)
	}
	var srcs []string
	for _, e := range ents {
		srcs = append(srcs, filepath.Join(stage, e.Name()))
	}
	sort.Strings(srcs)
	if len(srcs) == 0 {
		return nil
	}
	args := append([]string{"-s", "-p", "-m", "-Q", "-i", dev}, srcs...)
	args = append(args, "::/")
	cmd := exec.CommandContext(ctx, "mcopy", args...)
	// The ESP is a partition, not a floppy image: skip mtools' geometry sanity check.
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("filling the ESP %s: %s", dev, oneLine(out, err))
	}
	return nil
}

// oneLine is a tool's output squeezed into one line for an error message.
func oneLine(out []byte, err error) string {
	s := strings.Join(strings.Fields(string(out)), " ")
	if s == "" {
		return err.Error()
	}
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// isMountpoint reports whether path is a mount of its own.
func isMountpoint(path string) (bool, error) { return blockdev.IsMountpoint(path) }
