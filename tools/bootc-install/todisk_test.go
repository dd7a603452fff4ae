package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/blockdev"
	"gobootc.dev/lib/bootloader"
)

var diskTools = []string{"losetup", "partx", "sgdisk", "wipefs", "blkid", "mkfs.fat", "mcopy", "mdir", "grub-install"}

// mtools runs an mtools command on the FAT filesystem at dev.
func mtools(t *testing.T, prog, dev string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prog, append([]string{"-i", dev}, args...)...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", prog, args, err, out)
	}
	return string(out)
}

func TestToDiskLoopback(t *testing.T) {
	cases := []struct {
		name, fs string
		args     []string
		generic  bool // systemd-boot on the ESP, entries there
		grub     bool // GRUB in the MBR and the BIOS boot partition
	}{
		{"ext4 generic", "ext4", []string{"--generic-image"}, true, true},
		{"xfs grub", "xfs", []string{"--bootloader", "grub", "--root-size", "1G"}, false, true},
		{"ext4 systemd-boot", "ext4", []string{"--bootloader", "systemd"}, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			needRoot(t, append(diskTools, "mkfs."+c.fs)...)
			src, built := writeImage(t)
			img := sparse(t, 2<<30)
			args := append([]string{"to-disk", "--via-loopback", "--filesystem", c.fs, "--source-imgref", src, "--karg", "console=ttyS0,115200"}, c.args...)
			res := mustInstall(t, append(args, img)...)
			if a := attached(t, img); a != "" {
				t.Fatalf("loop device left attached: %s", a)
			}

			// The partition table, read from the file itself.
			table := sh(t, "sgdisk", "--print", img)
			for _, want := range []string{"EF02  BIOS-BOOT", "EF00  EFI-SYSTEM", "8304  root", "1024.0 KiB", "512.0 MiB"} {
				if !strings.Contains(table, want) {
					t.Errorf("partition table lacks %q:\n%s", want, table)
				}
			}
			if c.fs == "xfs" && !strings.Contains(table, "1024.0 MiB  8304") {
				t.Errorf("--root-size 1G not applied:\n%s", table)
			}

			// GRUB's boot.img in the MBR, its core image in the BIOS boot partition.
			f, _ := os.Open(img)
			mbr := make([]byte, 512)
			io.ReadFull(f, mbr)
			core := make([]byte, 512)
			f.ReadAt(core, 2048*512) // the BIOS boot partition starts at 1 MiB
			f.Close()
			if hasGrub := bytes.Contains(mbr, []byte("GRUB")); hasGrub != c.grub {
				t.Errorf("GRUB boot code in the MBR: %v, want %v", hasGrub, c.grub)
			}
			if mbr[510] != 0x55 || mbr[511] != 0xaa {
				t.Error("no MBR signature")
			}
			if empty := bytes.Equal(core, make([]byte, 512)); empty == c.grub {
				t.Errorf("BIOS boot partition empty: %v; want GRUB's core image there: %v", empty, c.grub)
			}

			// Mount what was made and look at it.
			ctx := context.Background()
			l, err := blockdev.AttachLoop(ctx, img)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Detach()
			espDev, rootDev := blockdev.PartitionDevice(l.Device, 2), blockdev.PartitionDevice(l.Device, 3)
			uuid, err := blockdev.UUID(ctx, rootDev)
			if err != nil {
				t.Fatal(err)
			}
			espUUID, _ := blockdev.UUID(ctx, espDev)
			mnt := t.TempDir()
			if err := unix.Mount(rootDev, mnt, c.fs, unix.MS_RDONLY, ""); err != nil {
				t.Fatal(err)
			}
			defer unix.Unmount(mnt, 0)
			in := readInstalled(t, mnt)
			d := in.d
			if d.Image.ManifestDigest != built.ManifestDigest.String() {
				t.Errorf("deployment of %s", d.Image.ManifestDigest)
			}
			if _, err := os.Stat(filepath.Join(in.r.Deployment(d.Stateroot, d.ID), "usr/lib/modules")); err != nil {
				t.Error(err)
			}
			wantKargs := "root=UUID=" + uuid + " rw console=ttyS0 image.karg=1 quiet console=ttyS0,115200"
			if d.Kargs != wantKargs || !strings.Contains(res.stdout, wantKargs) {
				t.Errorf("kargs %q\nwant  %q", d.Kargs, wantKargs)
			}
			if _, err := os.Stat(filepath.Join(mnt, "boot/grub/i386-pc/core.img")); (err == nil) != c.grub {
				t.Errorf("GRUB modules installed: %v, want %v", err == nil, c.grub)
			}
			var esp string
			if c.generic {
				esp = mtools(t, "mdir", espDev, "-/", "-b", "::/")
			}
			fstab, _ := os.ReadFile(filepath.Join(in.r.Etc(d.Stateroot, d.ID), "fstab"))
			if c.generic {
				// systemd-boot on the ESP, which is /boot: entries and kernels are there.
				for _, want := range []string{"::/EFI/BOOT/BOOTX64.EFI", "::/EFI/systemd/systemd-bootx64.efi", "::/loader/loader.conf",
					"::/loader/entries/bootc-default-" + d.ID + ".conf", "::/bootc/sha256-"} {
					if !strings.Contains(esp, want) {
						t.Errorf("ESP lacks %s:\n%s", want, esp)
					}
				}
				entry := mtools(t, "mtype", espDev, "::/loader/entries/bootc-default-"+d.ID+".conf")
				if !strings.Contains(entry, "options "+wantKargs+" panic=10 bootc.deployment=default/"+d.ID) {
					t.Errorf("ESP entry:\n%s", entry)
				}
				if !in.bc.FAT || !in.bc.BootSeparate || in.bc.FSUUID != espUUID || in.bc.Grub != c.grub {
					t.Errorf("boot config %+v, ESP UUID %s", in.bc, espUUID)
				}
				if want := "UUID=" + espUUID + " /sysroot/boot vfat umask=0077,shortname=winnt 0 2\n"; !strings.Contains(string(fstab), want) {
					t.Errorf("fstab %q lacks %q", fstab, want)
				}
			} else {
				// An empty ESP: mdir finds nothing to list.
				cmd := exec.Command("mdir", "-i", espDev, "-/", "-b", "::/")
				cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
				if out, _ := cmd.CombinedOutput(); strings.Contains(string(out), "::/EFI") || strings.Contains(string(out), "::/loader") {
					t.Errorf("ESP not empty with --bootloader grub:\n%s", out)
				}
				set, err := bootloader.ReadSet(in.r.Boot)
				if err != nil || len(set) != 1 || set[0].ID != d.ID || set[0].Kargs != wantKargs {
					t.Errorf("boot set %+v, %v", set, err)
				}
				if in.bc.FAT || in.bc.BootSeparate || in.bc.FSUUID != uuid || in.bc.Bootloader != "grub" || !in.bc.Grub {
					t.Errorf("boot config %+v", in.bc)
				}
				if cfg := read(t, filepath.Join(mnt, "boot/grub/grub.cfg")); !strings.Contains(cfg, "search --no-floppy --fs-uuid --set=root "+uuid) {
					t.Errorf("grub.cfg:\n%s", cfg)
				}
				if len(fstab) > 0 {
					t.Errorf("fstab written without a separate /boot: %q", fstab)
				}
			}
		})
	}
}

func sum(t *testing.T, p string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func TestToDiskRefusals(t *testing.T) {
	needRoot(t, append(diskTools, "mkfs.ext4")...)
	src, _ := writeImage(t)
	used := sparse(t, 600<<20)
	sh(t, "mkfs.ext4", "-q", "-F", used)
	blank := sparse(t, 600<<20)
	cases := []struct {
		name string
		args []string
		file string // an image file that must stay unchanged
		want string
	}{
		{"filesystem present", []string{"to-disk", "--via-loopback", "--source-imgref", src, used}, used, "holds ext4 signatures; use --wipe"},
		{"missing device", []string{"to-disk", "--source-imgref", src, "/dev/nonexistent-disk"}, "", "device /dev/nonexistent-disk: no such file or directory"},
		{"not a block device", []string{"to-disk", "--source-imgref", src, blank}, blank, "not a block device"},
		{"missing image file", []string{"to-disk", "--via-loopback", "--source-imgref", src, blank + ".missing"}, "", "does not exist"},
		{"unknown filesystem", []string{"to-disk", "--via-loopback", "--filesystem", "ntfs", "--source-imgref", src, blank}, blank, `--filesystem "ntfs": want one of xfs, ext4, btrfs`},
		{"tpm2-luks", []string{"to-disk", "--via-loopback", "--block-setup", "tpm2-luks", "--source-imgref", src, blank}, blank, "--block-setup tpm2-luks is not supported"},
		{"no source outside a container", []string{"to-disk", "--via-loopback", blank}, blank, "--source-imgref must be defined when not running in a podman container"},
		{"bad root size", []string{"to-disk", "--via-loopback", "--root-size", "lots", "--source-imgref", src, blank}, blank, `--root-size: size "lots"`},
		{"bad bootloader", []string{"to-disk", "--via-loopback", "--bootloader", "lilo", "--source-imgref", src, blank}, blank, `--bootloader "lilo"`},
		{"generic without loaders", []string{"to-disk", "--via-loopback", "--generic-image", "--bootloader", "none", "--source-imgref", src, blank}, blank, "--generic-image installs boot loaders"},
		{"reserved karg", []string{"to-disk", "--via-loopback", "--karg", "bootc.deployment=x/y", "--source-imgref", src, blank}, blank, "set by bootc itself"},
		{"missing keys file", []string{"to-disk", "--via-loopback", "--root-ssh-authorized-keys", "/nonexistent/keys", "--source-imgref", src, blank}, blank, "--root-ssh-authorized-keys: open /nonexistent/keys"},
		{"root larger than the disk", []string{"to-disk", "--via-loopback", "--root-size", "4G", "--source-imgref", src, blank}, blank, "partitioning /dev/loop"},
		// Last: it fails after partitioning, making filesystems and mounting.
		{"fetch fails", []string{"to-disk", "--via-loopback", "--source-imgref", "oci:/nonexistent/oci:latest", blank}, "", "fetching oci:/nonexistent/oci:latest"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before [32]byte
			if c.file != "" {
				before = sum(t, c.file)
			}
			oneLineError(t, install(t, c.args...), c.want)
			if c.file != "" {
				if sum(t, c.file) != before {
					t.Error("the image file was changed")
				}
				if a := attached(t, c.file); a != "" {
					t.Errorf("loop device left attached: %s", a)
				}
			}
			if a := attached(t, blank); a != "" {
				t.Errorf("loop device left attached: %s", a)
			}
			if mi := read(t, "/proc/self/mountinfo"); strings.Contains(mi, "bootc-install-root-") {
				t.Errorf("install mount left behind:\n%s", mi)
			}
		})
	}

	// With --wipe the used disk is taken.
	mustInstall(t, "to-disk", "--via-loopback", "--wipe", "--bootloader", "none", "--source-imgref", src, used)
	if a := attached(t, used); a != "" {
		t.Errorf("loop device left attached: %s", a)
	}
	if table := sh(t, "sgdisk", "--print", used); !strings.Contains(table, "8304  root") {
		t.Errorf("not partitioned after --wipe:\n%s", table)
	}
}
