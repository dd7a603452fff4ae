package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/blockdev"
	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

func TestPrintConfiguration(t *testing.T) {
	const dir = "usr/lib/bootc/install/"
	cases := []struct {
		name  string
		files map[string]string
		all   bool
		want  string
		err   string
	}{
		{"empty", nil, false, `{}`, ""},
		{"merged, kargs hidden", map[string]string{
			dir + "00-base.toml":         "[install.filesystem.root]\ntype = \"xfs\"\n[install]\nkargs = [\"a=1\"]\n",
			dir + "10-derived.toml":      "[install]\nroot-fs-type = \"btrfs\"\nkargs = [\"b=2\"]\n",
			"etc/bootc/install/05.toml":  "[install]\nstateroot = \"os\"\n",
			"run/bootc/install/99.toml":  "[install]\nbootloader = \"systemd\"\nkarg-deletes = [\"quiet\"]\n",
			dir + "20-other-arch.toml":   "[install]\nmatch-architectures = [\"s390x\"]\nroot-fs-type = \"ext4\"\n",
			"etc/bootc/install/note.txt": "ignored",
		}, false, `{"root-fs-type":"btrfs","filesystem":{"root":{"type":"btrfs"}},"stateroot":"os","bootloader":"systemd"}`, ""},
		{"--all shows kargs", map[string]string{
			dir + "00.toml": "[install]\nkargs = [\"a=1\"]\nkarg-deletes = [\"quiet\"]\n",
			dir + "01.toml": "[install]\nkargs = [\"b=2\"]\n",
		}, true, `{"kargs":["a=1","b=2"],"karg-deletes":["quiet"]}`, ""},
		{"unknown key", map[string]string{dir + "50-typo.toml": "[install]\nkarg = [\"x\"]\n"}, false, "",
			`50-typo.toml: unknown key "install.karg"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			for p, content := range c.files {
				os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
				if err := os.WriteFile(filepath.Join(root, p), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"print-configuration", "--config-root", root}
			if c.all {
				args = append(args, "--all")
			}
			r := install(t, args...)
			if c.err != "" {
				oneLineError(t, r, c.err)
				return
			}
			if r.code != 0 || strings.TrimSpace(r.stdout) != c.want {
				t.Errorf("exit %d, stdout %s, stderr %s\nwant %s", r.code, r.stdout, r.stderr, c.want)
			}
		})
	}
}

// installed is what an install left on a physical root.
type installed struct {
	r  layout.Root
	d  *record.Deployment
	bc *record.BootConfig
}

func readInstalled(t *testing.T, phys string) installed {
	t.Helper()
	r := layout.New(phys, "")
	ds, err := record.ListDeployments(r)
	if err != nil || len(ds) != 1 {
		t.Fatalf("deployments %v, %v", ds, err)
	}
	bc, err := record.ReadBootConfig(r)
	if err != nil {
		t.Fatal(err)
	}
	return installed{r, ds[0], bc}
}

func TestToFilesystemDirectory(t *testing.T) {
	needRoot(t)
	src, built := writeImage(t)
	root := filepath.Join(t.TempDir(), "root")
	os.Mkdir(root, 0o755)
	os.Mkdir(filepath.Join(root, "lost+found"), 0o700) // allowed in an "empty" root
	keys := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(keys, []byte("ssh-ed25519 AAAAC3Nza test@example\n"), 0o644)
	cfg := t.TempDir()
	os.MkdirAll(filepath.Join(cfg, "usr/lib/bootc/install"), 0o755)
	os.WriteFile(filepath.Join(cfg, "usr/lib/bootc/install/00.toml"),
		[]byte("[install]\nkargs = [\"cfg.karg=1\", \"cfg.gone\"]\nkarg-deletes = [\"cfg.gone\"]\nstateroot = \"os\"\n"), 0o644)

	res := mustInstall(t, "to-filesystem", "--source-imgref", src, "--root-mount-spec", "LABEL=testroot",
		"--karg", "extra=a b", "--karg-delete", "quiet", "--root-ssh-authorized-keys", keys,
		"--config-root", cfg, "--bound-images", "pull", root)
	in := readInstalled(t, root)
	d := in.d

	// Layout and record.
	if d.Stateroot != "os" || d.Image.ManifestDigest != built.ManifestDigest.String() || d.Image.Version != "1.0" {
		t.Errorf("deployment %+v", d)
	}
	if d.Image.Ref.Transport != "oci" || !strings.HasSuffix(d.Image.Ref.Image, "/oci:latest") || d.Image.Ref.Signature != nil {
		t.Errorf("recorded reference %+v", d.Image.Ref)
	}
	deployRoot := in.r.Deployment(d.Stateroot, d.ID)
	for _, p := range []string{deployRoot + "/usr/etc/os-release", in.r.Var("os"), in.r.BootFiles(d.BootDigest) + "/vmlinuz"} {
		if _, err := os.Stat(p); err != nil {
			t.Error(err)
		}
	}

	// Kernel command line: root spec, rw, configuration, kargs.d, deletions, --karg.
	want := `root=LABEL=testroot rw cfg.karg=1 console=ttyS0 image.karg=1 extra="a b"`
	if d.Kargs != want {
		t.Errorf("kargs %q\nwant  %q", d.Kargs, want)
	}
	if !strings.Contains(res.stdout, "Kernel command line: "+want) {
		t.Errorf("stdout %q", res.stdout)
	}

	// Boot entries, configuration and GRUB's static configuration.
	set, err := bootloader.ReadSet(in.r.Boot)
	if err != nil || len(set) != 1 || set[0].ID != d.ID || set[0].Kargs != want {
		t.Errorf("boot set %+v, %v", set, err)
	}
	if in.bc.Bootloader != "grub" || in.bc.FAT || in.bc.BootSeparate {
		t.Errorf("boot config %+v", in.bc)
	}
	if cfg := read(t, filepath.Join(in.r.Boot, "grub/grub.cfg")); !strings.Contains(cfg, "configfile /boot/loader/grub.cfg") {
		t.Errorf("grub.cfg:\n%s", cfg)
	}

	// The writable /etc: a copy (new inodes) keeping mode, owner and extended attributes.
	etc := in.r.Etc(d.Stateroot, d.ID)
	if got := read(t, filepath.Join(etc, "app.d/app.conf")); got != "a=1\n" {
		t.Errorf("app.conf %q", got)
	}
	var st, pristine unix.Stat_t
	if err := unix.Lstat(filepath.Join(etc, "secret"), &st); err != nil {
		t.Fatal(err)
	}
	unix.Lstat(filepath.Join(deployRoot, "usr/etc/secret"), &pristine)
	if st.Mode&0o7777 != 0o600 || st.Uid != 0 || st.Gid != 42 || st.Ino == pristine.Ino {
		t.Errorf("etc/secret mode %o uid %d gid %d, inode shared with the image: %v", st.Mode&0o7777, st.Uid, st.Gid, st.Ino == pristine.Ino)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(etc, "secret"), "user.test", buf); err != nil || string(buf[:n]) != "kept" {
		t.Errorf("xattr user.test: %q, %v", buf[:n], err)
	}
	wantTmpfile := "d /root/.ssh 0700 root root -\nf~ /root/.ssh/authorized_keys 600 root root - " +
		base64.StdEncoding.EncodeToString([]byte("ssh-ed25519 AAAAC3Nza test@example\n")) + "\n"
	if got := read(t, filepath.Join(etc, SSHKeysTmpfile)); got != wantTmpfile {
		t.Errorf("tmpfiles entry %q\nwant %q", got, wantTmpfile)
	}
	if _, err := os.Stat(filepath.Join(etc, "fstab")); err == nil {
		t.Error("an fstab was written for a root without a separate /boot")
	}

	// Provenance.
	var prov map[string]any
	if err := json.Unmarshal([]byte(read(t, in.r.Provenance())), &prov); err != nil {
		t.Fatal(err)
	}
	if prov["image"] != src || prov["target-image"] != src || prov["digest"] != d.Image.ManifestDigest ||
		prov["version"] != "1.0" || prov["kernel"] == "" || prov["time"] == nil || prov["bound-images"] != "pull" {
		t.Errorf("provenance %v", prov)
	}

	// The same root again: refused, as not empty, or as already installed alongside.
	oneLineError(t, install(t, "to-filesystem", "--source-imgref", src, "--root-mount-spec", "LABEL=x", root), "is not empty")
	oneLineError(t, install(t, "to-filesystem", "--source-imgref", src, "--root-mount-spec", "LABEL=x", "--replace", "alongside", root),
		"already holds a bootc deployment")

	// --replace wipe starts over.
	os.WriteFile(filepath.Join(root, "junk"), []byte("x"), 0o644)
	mustInstall(t, "to-filesystem", "--source-imgref", src, "--root-mount-spec", "", "--replace", "wipe", "--bootloader", "none", root)
	in = readInstalled(t, root)
	if _, err := os.Stat(filepath.Join(root, "junk")); err == nil {
		t.Error("--replace wipe kept junk")
	}
	if in.d.Stateroot != "default" || in.d.Kargs != "rw console=ttyS0 image.karg=1 quiet" || in.bc.Bootloader != "none" {
		t.Errorf("after wipe: %+v, %+v", in.d, in.bc)
	}
	if _, err := os.Stat(filepath.Join(root, "boot/grub/grub.cfg")); err == nil {
		t.Error("--bootloader none wrote a GRUB configuration")
	}
}

func TestToFilesystemMounted(t *testing.T) {
	needRoot(t, "mkfs.ext4", "losetup", "blkid")
	src, _ := writeImage(t)
	img := sparse(t, 512<<20)
	ctx := context.Background()
	l, err := blockdev.AttachLoop(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Detach()
	if err := blockdev.Mkfs(ctx, l.Device, "ext4", "root"); err != nil {
		t.Fatal(err)
	}
	uuid, err := blockdev.UUID(ctx, l.Device)
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if err := unix.Mount(l.Device, mnt, "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, 0)

	// A target image that cannot be fetched is refused unless the check is skipped.
	oneLineError(t, install(t, "to-filesystem", "--source-imgref", src, "--target-imgref", "127.0.0.1:1/nothing:here", "--bootloader", "none", mnt),
		"cannot be fetched")
	os.RemoveAll(filepath.Join(mnt, "bootc"))
	os.RemoveAll(filepath.Join(mnt, "boot"))
	os.Remove(filepath.Join(mnt, ".bootc-aleph.json"))

	// This host's policy accepts anything, which --enforce-container-sigpolicy refuses.
	oneLineError(t, install(t, "to-filesystem", "--source-imgref", src, "--enforce-container-sigpolicy", "--bootloader", "none", mnt),
		"signature policy accepts any image")
	os.RemoveAll(filepath.Join(mnt, "bootc"))
	os.RemoveAll(filepath.Join(mnt, "boot"))

	mustInstall(t, "to-filesystem", "--source-imgref", src, "--target-imgref", "quay.io/example/os:1", "--skip-fetch-check",
		"--bootloader", "none", mnt)
	in := readInstalled(t, mnt)
	if !strings.HasPrefix(in.d.Kargs, "root=UUID="+uuid+" rw ") {
		t.Errorf("kargs %q: want root=UUID=%s rw first", in.d.Kargs, uuid)
	}
	ref := in.d.Image.Ref
	if ref.Transport != "registry" || ref.Image != "quay.io/example/os:1" || ref.Signature != nil {
		t.Errorf("recorded reference %+v", ref)
	}
	if in.bc.FSUUID != uuid {
		t.Errorf("boot config %+v: want FSUUID %s", in.bc, uuid)
	}
	var prov map[string]any
	json.Unmarshal([]byte(read(t, in.r.Provenance())), &prov)
	if prov["target-image"] != "docker://quay.io/example/os:1" || prov["image"] != src {
		t.Errorf("provenance %v", prov)
	}
	// Finalized, not unmounted: the caller owns the mount.
	if mp, _ := blockdev.IsMountpoint(mnt); !mp {
		t.Error("ROOT was unmounted")
	}
}
