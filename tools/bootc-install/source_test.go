package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/blockdev"
)

func TestResolveSource(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	podman := filepath.Join(dir, "podman")
	os.WriteFile(podman, []byte("engine=\"podman-4.3.1\"\nname=\"inst\"\nid=\"abc\"\nimage=\"quay.io/example/os:42\"\nimageid=\""+id+"\"\nrootless=0\n"), 0o644)
	rootless := filepath.Join(dir, "rootless")
	os.WriteFile(rootless, []byte("image=\"quay.io/example/os:42\"\nimageid=\""+id+"\"\nrootless=1\n"), 0o644)
	noID := filepath.Join(dir, "noid")
	os.WriteFile(noID, []byte("engine=\"podman\"\n"), 0o644)
	missing := filepath.Join(dir, "missing")

	cases := []struct {
		name         string
		c            Common
		fetch, track string // TransportString of the source and the target
		sig          bool
		err          string
	}{
		{"own image from host storage", Common{ContainerEnv: podman},
			"containers-storage:[overlay@/var/lib/containers/storage+/run/containers/storage]" + id, "docker://quay.io/example/os:42", false, ""},
		{"explicit source wins", Common{ContainerEnv: podman, SourceImgref: "oci:/srv/os:1"}, "oci:/srv/os:1", "oci:/srv/os:1", false, ""},
		{"target override", Common{ContainerEnv: missing, SourceImgref: "oci:/srv/os:1", TargetImgref: "registry.example/os:stable", TargetTransport: "registry",
			EnforceContainerSigpolicy: true}, "oci:/srv/os:1", "docker://registry.example/os:stable", true, ""},
		{"target with transport", Common{ContainerEnv: missing, SourceImgref: "docker://q.example/a:1", TargetImgref: "/mnt/os:latest", TargetTransport: "oci"},
			"docker://q.example/a:1", "oci:/mnt/os:latest", false, ""},
		{"outside a container", Common{ContainerEnv: missing}, "", "", false, ErrNoSource.Error()},
		{"no image id", Common{ContainerEnv: noID}, "", "", false, ErrNoSource.Error()},
		{"rootless", Common{ContainerEnv: rootless}, "", "", false, "rootless podman"},
		{"bad source", Common{ContainerEnv: missing, SourceImgref: "oci:relative/path"}, "", "", false, "--source-imgref"},
		{"transport without target", Common{ContainerEnv: missing, SourceImgref: "oci:/srv/os:1", TargetTransport: "oci"}, "", "", false, "--target-transport oci needs --target-imgref"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.c.TargetTransport == "" {
				c.c.TargetTransport = "registry"
			}
			s, err := c.c.resolveSource()
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.fetch.TransportString() != c.fetch || s.target.TransportString() != c.track {
				t.Errorf("fetch %s, target %s\nwant  %s, %s", s.fetch.TransportString(), s.target.TransportString(), c.fetch, c.track)
			}
			if (s.sig != nil) != c.sig {
				t.Errorf("signature %+v", s.sig)
			}
		})
	}
	if _, err := (&Common{ContainerEnv: missing, TargetTransport: "registry"}).resolveSource(); !errors.Is(err, ErrNoSource) {
		t.Errorf("error %v is not ErrNoSource", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512": 512, "512M": 512, "20G": 20 << 10, "1T": 1 << 20, "2GiB": 2 << 10} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1G", "1.5G", "1K", "G"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("parseSize(%q) accepted", bad)
		}
	}
}

func TestRunningRootRefused(t *testing.T) {
	needRoot(t)
	src, _ := writeImage(t)
	oneLineError(t, install(t, "to-filesystem", "--source-imgref", src, "--replace", "alongside", "/"),
		"ROOT / is the running system's own root; add --acknowledge-destructive")
	if _, err := os.Stat("/bootc"); err == nil {
		t.Error("/bootc was created")
	}
	oneLineError(t, install(t, "to-existing-root", "--source-imgref", src, "--acknowledge-destructive", filepath.Join(t.TempDir(), "absent")),
		"does not exist: mount the host's root there")
	oneLineError(t, install(t, "to-filesystem", "--source-imgref", src, "--replace", "sideways", t.TempDir()), `--replace "sideways"`)
	oneLineError(t, install(t, "to-filesystem", "--source-imgref", src, "--root-mount-spec", "LABEL=r", "--bootloader", "systemd", t.TempDir()), "--bootloader systemd needs the ESP")
	oneLineError(t, install(t, "to-filesystem", "--source-imgref", src, "--root-mount-spec", "LABEL=r", "--boot-mount-spec", "UUID=1", t.TempDir()), "is not a separate mount")
}

func TestToExistingRoot(t *testing.T) {
	needRoot(t, "mkfs.ext4", "losetup", "blkid")
	src, _ := writeImage(t)
	ctx := context.Background()
	l, err := blockdev.AttachLoop(ctx, sparse(t, 512<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Detach()
	if err := blockdev.Mkfs(ctx, l.Device, "ext4", "old"); err != nil {
		t.Fatal(err)
	}
	uuid, _ := blockdev.UUID(ctx, l.Device)
	target := t.TempDir()
	if err := unix.Mount(l.Device, target, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(target, 0)
	// The old system's files.
	os.MkdirAll(filepath.Join(target, "etc"), 0o755)
	os.WriteFile(filepath.Join(target, "etc/hostname"), []byte("old\n"), 0o644)
	os.MkdirAll(filepath.Join(target, "boot/loader/entries"), 0o755)
	os.WriteFile(filepath.Join(target, "boot/loader/entries/old.conf"), []byte("title old\nlinux /vmlinuz-old\n"), 0o644)

	mustInstall(t, "to-existing-root", "--source-imgref", src, "--acknowledge-destructive", "--bootloader", "none", target)
	in := readInstalled(t, target)
	if got := read(t, filepath.Join(target, "etc/hostname")); got != "old\n" {
		t.Errorf("old files changed: %q", got)
	}
	if !strings.HasPrefix(in.d.Kargs, "root=UUID="+uuid+" rw ") {
		t.Errorf("kargs %q", in.d.Kargs)
	}
	// The old boot/loader directory was taken over by the bootc entry set.
	if fi, err := os.Lstat(filepath.Join(target, "boot/loader")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("boot/loader is not bootc's symlink: %v", err)
	}
}
