package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/blockdev"
	"gobootc.dev/lib/durable"
	"gobootc.dev/lib/installconfig"
	"gobootc.dev/lib/kargs"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// DefaultFilesystem is the root filesystem to-disk makes when neither --filesystem nor the
// image's install configuration names one: ext4 is read by every GRUB version an image may
// carry, whatever features the mkfs of the install environment enables by default.
const DefaultFilesystem = "ext4"

// prepare checks what needs neither the target nor the image, so that bad input fails before
// anything is changed, and gathers the install's inputs.
func (c *Common) prepare(e *env) (*installer, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	var keys []byte
	if c.RootSSHAuthorizedKeys != "" {
		b, err := os.ReadFile(c.RootSSHAuthorizedKeys)
		if err != nil {
			return nil, fmt.Errorf("--root-ssh-authorized-keys: %w", err)
		}
		keys = b
	}
	cfg, err := c.config()
	if err != nil {
		return nil, err
	}
	src, err := c.resolveSource()
	if err != nil {
		return nil, err
	}
	return &installer{e: e, c: c, cfg: cfg, src: src, stateroot: c.stateroot(cfg), keys: keys}, nil
}

func requireRoot() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("install must be run as root")
	}
	return nil
}

// rootTypeCode is the sgdisk type code of the discoverable root partition of the architecture.
func rootTypeCode(arch string) string {
	switch arch {
	case "x86_64":
		return "8304"
	case "aarch64":
		return "8305"
	}
	return "8300"
}

// run installs to a whole disk. Step order: check the options; open the device (a loop device
// over the image file with --via-loopback) and clear it; partition it and make the filesystems;
// mount the root, install, finalize and unmount it.
func (c *ToDisk) run(ctx context.Context, e *env) (err error) {
	in, err := c.prepare(e)
	if err != nil {
		return err
	}
	p, err := c.plan(in)
	if err != nil {
		return err
	}
	dev, detach, err := c.openDevice(ctx, e)
	if err != nil {
		return err
	}
	defer func() {
		if derr := detach(); derr != nil && err == nil {
			err = derr
		}
	}()
	if err := c.clearDevice(ctx, dev); err != nil {
		return err
	}
	parts, err := partition(ctx, e, dev, p)
	if err != nil {
		return err
	}
	d, err := c.installMounted(ctx, in, p, dev, parts)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Installation complete: %s on %s (root %s, %s)\n", d.Image.Ref.Image, c.Device, parts.rootDev, p.fstype)
	fmt.Fprintf(e.stdout, "Kernel command line: %s\n", d.Kargs)
	return nil
}

// diskPlan is what to-disk makes, settled from the options, the image's install configuration
// and the host before the disk is touched.
type diskPlan struct {
	fstype     string
	rootMiB    int64 // 0: the rest of the disk
	bootloader string
	arch       string
}

// plan checks the options against the install configuration and the host.
func (c *ToDisk) plan(in *installer) (*diskPlan, error) {
	fstype, err := c.filesystem(in.cfg)
	if err != nil {
		return nil, err
	}
	if err := c.checkBlockSetup(in.cfg); err != nil {
		return nil, err
	}
	p := &diskPlan{fstype: fstype, bootloader: c.bootloader(in.cfg)}
	if c.RootSize != "" {
		if p.rootMiB, err = parseSize(c.RootSize); err != nil {
			return nil, fmt.Errorf("--root-size: %w", err)
		}
	}
	if c.GenericImage && p.bootloader == "none" {
		return nil, fmt.Errorf("--generic-image installs boot loaders; it cannot be combined with --bootloader none")
	}
	if p.arch, err = kargs.HostArch(); err != nil {
		return nil, err
	}
	if err := requireRoot(); err != nil {
		return nil, err
	}
	return p, nil
}

// filesystem is the root filesystem type: the flag's, else the configuration's, else ext4.
func (c *ToDisk) filesystem(cfg *installconfig.Config) (string, error) {
	fstype := c.Filesystem
	if fstype == "" {
		fstype = cfg.FSType()
	}
	if fstype == "" {
		fstype = DefaultFilesystem
	}
	if !slices.Contains(installconfig.FilesystemTypes, fstype) {
		return "", fmt.Errorf("--filesystem %q: want one of %s", fstype, strings.Join(installconfig.FilesystemTypes, ", "))
	}
	return fstype, nil
}

// checkBlockSetup accepts the one block setup this version makes, direct, when the install
// configuration allows it.
func (c *ToDisk) checkBlockSetup(cfg *installconfig.Config) error {
	allowed := cfg.Block
	if len(allowed) == 0 {
		allowed = []string{"direct"}
	}
	block := c.BlockSetup
	if block == "" {
		block = allowed[0]
	}
	switch {
	case block == "tpm2-luks":
		return fmt.Errorf("--block-setup tpm2-luks is not supported by this version; use direct")
	case block != "direct":
		return fmt.Errorf("--block-setup %q: want direct", block)
	case !slices.Contains(allowed, block):
		return fmt.Errorf("--block-setup %s: the image's install configuration allows only %s", block, strings.Join(allowed, ", "))
	}
	return nil
}

// openDevice returns the block device to install to: DEVICE itself, or with --via-loopback a
// loop device over the image file, which detach releases.
func (c *ToDisk) openDevice(ctx context.Context, e *env) (dev string, detach func() error, err error) {
	if !c.ViaLoopback {
		if err := blockdev.CheckBlockDevice(c.Device); err != nil {
			return "", nil, err
		}
		return c.Device, func() error { return nil }, nil
	}
	file, err := filepath.Abs(c.Device)
	if err != nil {
		return "", nil, err
	}
	fi, err := os.Stat(file)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil, fmt.Errorf("--via-loopback: image file %s does not exist (create it first, e.g. truncate -s 10G %s)", file, file)
	}
	if err != nil {
		return "", nil, fmt.Errorf("--via-loopback: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", nil, fmt.Errorf("--via-loopback: %s is not a regular file", file)
	}
	l, err := blockdev.AttachLoop(ctx, file)
	if err != nil {
		return "", nil, err
	}
	e.logf("Attached %s to %s", file, l.Device)
	return l.Device, l.Detach, nil
}

// clearDevice erases the device with --wipe; without it, a device in use is refused.
func (c *ToDisk) clearDevice(ctx context.Context, dev string) error {
	if c.Wipe {
		return blockdev.Wipe(ctx, dev)
	}
	return blockdev.CheckUnused(ctx, dev)
}

// diskParts are the ESP and root partitions to-disk made, with their filesystems' UUIDs.
type diskParts struct {
	espDev, espUUID   string
	rootDev, rootUUID string
}

// partition lays out the disk (a BIOS boot partition on x86_64, the ESP, the root) and makes
// the ESP's and the root's filesystems.
func partition(ctx context.Context, e *env, dev string, p *diskPlan) (*diskParts, error) {
	var parts []blockdev.Part
	if p.arch == "x86_64" {
		parts = append(parts, blockdev.Part{SizeMiB: 1, Type: "EF02", Name: "BIOS-BOOT"})
	}
	parts = append(parts, blockdev.Part{SizeMiB: 512, Type: "EF00", Name: "EFI-SYSTEM"},
		blockdev.Part{SizeMiB: p.rootMiB, Type: rootTypeCode(p.arch), Name: "root"})
	e.logf("Partitioning %s", dev)
	devs, err := blockdev.Partition(ctx, dev, parts)
	if err != nil {
		return nil, err
	}
	d := &diskParts{espDev: devs[len(devs)-2], rootDev: devs[len(devs)-1]}
	if err := blockdev.Mkfs(ctx, d.espDev, "vfat", "EFI-SYSTEM"); err != nil {
		return nil, err
	}
	if err := blockdev.Mkfs(ctx, d.rootDev, p.fstype, "root"); err != nil {
		return nil, err
	}
	if d.rootUUID, err = blockdev.UUID(ctx, d.rootDev); err != nil {
		return nil, err
	}
	if d.espUUID, err = blockdev.UUID(ctx, d.espDev); err != nil {
		return nil, err
	}
	e.logf("Made %s (%s, UUID %s) and the ESP %s (UUID %s)", d.rootDev, p.fstype, d.rootUUID, d.espDev, d.espUUID)
	return d, nil
}

// installMounted mounts the new root filesystem, installs to it, finalizes it (unless
// --skip-finalize) and unmounts it.
func (c *ToDisk) installMounted(ctx context.Context, in *installer, p *diskPlan, dev string, parts *diskParts) (d *record.Deployment, err error) {
	mnt, err := os.MkdirTemp("", "bootc-install-root-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(parts.rootDev, mnt, p.fstype, 0, ""); err != nil {
		return nil, fmt.Errorf("mounting %s (%s) at %s: %w", parts.rootDev, p.fstype, mnt, err)
	}
	mounted := true
	defer func() {
		if !mounted {
			return
		}
		if uerr := unmount(mnt); uerr != nil && err == nil {
			err = uerr
		}
	}()
	t := &target{root: mnt, rootSpec: "UUID=" + parts.rootUUID, disk: dev, bootUUID: parts.rootUUID,
		esp: &esp{dev: parts.espDev, uuid: parts.espUUID}, bootloader: p.bootloader, generic: c.GenericImage, mountpoint: true}
	if d, err = in.install(ctx, t); err != nil {
		return nil, err
	}
	if !c.SkipFinalize {
		if err := finalizeFS(ctx, mnt); err != nil {
			return nil, err
		}
	}
	mounted = false
	if err := unmount(mnt); err != nil {
		return nil, err
	}
	return d, nil
}

// unmount unmounts dir, retrying briefly while something still holds it.
func unmount(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		if err = unix.Unmount(dir, 0); err == nil || !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("unmounting %s: %w", dir, err)
	}
	return nil
}

// The freeze ioctls, _IOWR('X', 119/120, int), the same on every Linux architecture.
const (
	ioctlFIFREEZE = 0xc0045877
	ioctlFITHAW   = 0xc0045878
)

// finalizeFS prepares a finished root filesystem for its first boot: unused blocks are
// discarded (a sparse image stays small), everything is written out, and a freeze and thaw
// checkpoints the journal, so a boot loader that reads the filesystem without replaying the
// journal (GRUB) sees the final state.
func finalizeFS(ctx context.Context, root string) error {
	exec.CommandContext(ctx, "fstrim", "--quiet", root).Run() // not every device discards
	if err := durable.SyncFS(root); err != nil {
		return err
	}
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("finalizing %s: %w", root, err)
	}
	defer unix.Close(fd)
	if err := unix.IoctlSetInt(fd, ioctlFIFREEZE, 0); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			return nil
		}
		return fmt.Errorf("freezing %s: %w", root, err)
	}
	if err := unix.IoctlSetInt(fd, ioctlFITHAW, 0); err != nil {
		return fmt.Errorf("thawing %s: %w", root, err)
	}
	return nil
}

// sameFile reports whether two paths are the same directory.
func sameFile(a, b string) bool {
	var sa, sb unix.Stat_t
	if unix.Stat(a, &sa) != nil || unix.Stat(b, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// isRunningRoot reports whether dir is the root of this system: this process's, or (in a
// container run with --pid=host) the host's.
func isRunningRoot(dir string) bool {
	return sameFile(dir, "/") || sameFile(dir, "/proc/1/root")
}

func (c *ToFilesystem) run(ctx context.Context, e *env) error {
	in, err := c.prepare(e)
	if err != nil {
		return err
	}
	switch c.Replace {
	case "", "wipe", "alongside":
	default:
		return fmt.Errorf("--replace %q: want wipe or alongside", c.Replace)
	}
	root, err := filepath.Abs(c.Root)
	if err != nil {
		return err
	}
	fi, err := os.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ROOT %s does not exist", root)
	}
	if err != nil {
		return fmt.Errorf("ROOT: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("ROOT %s is not a directory", root)
	}
	if err := requireRoot(); err != nil {
		return err
	}
	if isRunningRoot(root) && !c.AcknowledgeDestructive {
		return fmt.Errorf("ROOT %s is the running system's own root; add --acknowledge-destructive to install there", root)
	}
	t, err := c.target(ctx, root, in)
	if err != nil {
		return err
	}
	switch c.Replace {
	case "":
		if err := checkEmpty(root); err != nil {
			return err
		}
	case "wipe":
		e.logf("Wiping %s", root)
		if err := wipeRoot(root); err != nil {
			return err
		}
	}
	if !t.mountpoint {
		e.logf("%s is not a mount point: no boot code is installed and the filesystem is not finalized", root)
	}
	d, err := in.install(ctx, t)
	if err != nil {
		return err
	}
	if !c.SkipFinalize && t.mountpoint {
		if err := finalizeFS(ctx, root); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "Installation complete: %s in %s\n", d.Image.Ref.Image, root)
	fmt.Fprintf(e.stdout, "Kernel command line: %s\n", d.Kargs)
	return nil
}

// target works out root=, /boot and the disk of a prepared root filesystem.
func (c *ToFilesystem) target(ctx context.Context, root string, in *installer) (*target, error) {
	t := &target{root: root, bootloader: c.bootloader(in.cfg)}
	mp, err := isMountpoint(root)
	if err != nil {
		return nil, err
	}
	t.mountpoint = mp
	m, err := blockdev.MountOf(root)
	if err != nil {
		return nil, err
	}
	var uuid string
	if blockdev.CheckBlockDevice(m.Source) == nil {
		uuid, _ = blockdev.UUID(ctx, m.Source)
		if mp {
			if t.disk, err = blockdev.Disk(m.Source); err != nil {
				return nil, err
			}
		}
	}
	switch {
	case c.RootMountSpec != nil:
		t.rootSpec = *c.RootMountSpec
	case in.cfg.RootMountSpec != nil:
		t.rootSpec = *in.cfg.RootMountSpec
	case uuid != "":
		t.rootSpec = "UUID=" + uuid
	default:
		return nil, fmt.Errorf("cannot find the UUID of the filesystem holding %s (%s on %s); give --root-mount-spec", root, m.FSType, m.Source)
	}
	t.bootUUID = uuid

	bootDir := layout.BootDir(root)
	bootSeparate := false
	if _, err := os.Stat(bootDir); err == nil {
		if bootSeparate, err = isMountpoint(bootDir); err != nil {
			return nil, err
		}
	}
	if !bootSeparate {
		if c.BootMountSpec != nil {
			return nil, fmt.Errorf("--boot-mount-spec: %s is not a separate mount", bootDir)
		}
		if t.bootloader == "systemd" {
			return nil, fmt.Errorf("--bootloader systemd needs the ESP mounted at %s (to-disk sets one up)", bootDir)
		}
		return t, nil
	}
	bm, err := blockdev.MountOf(bootDir)
	if err != nil {
		return nil, err
	}
	var buuid string
	if blockdev.CheckBlockDevice(bm.Source) == nil {
		buuid, _ = blockdev.UUID(ctx, bm.Source)
	}
	switch {
	case c.BootMountSpec != nil:
		t.bootSpec = *c.BootMountSpec
	case in.cfg.BootMountSpec != nil && *in.cfg.BootMountSpec != "":
		t.bootSpec = *in.cfg.BootMountSpec
	case buuid != "":
		t.bootSpec = "UUID=" + buuid
	default:
		return nil, fmt.Errorf("cannot find the UUID of the filesystem at %s; give --boot-mount-spec", bootDir)
	}
	t.bootUUID = buuid
	fat := bm.FSType == "vfat" || bm.FSType == "msdos"
	switch {
	case fat && t.bootloader == "grub":
		return nil, fmt.Errorf("%s is a FAT filesystem (an ESP): use --bootloader systemd", bootDir)
	case !fat && t.bootloader == "systemd":
		return nil, fmt.Errorf("--bootloader systemd needs the ESP (vfat) at %s, not %s", bootDir, bm.FSType)
	}
	return t, nil
}

func (c *ToExistingRoot) run(ctx context.Context, e *env) error {
	root, err := filepath.Abs(c.Root)
	if err != nil {
		return err
	}
	if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist: mount the host's root there (podman run -v /:%s)", root, root)
	}
	if !c.AcknowledgeDestructive {
		e.logf("warning: installing alongside the system at %s, whose /boot will boot the new image; interrupt within 20 seconds to cancel (--acknowledge-destructive skips this wait)", root)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Second):
		}
	}
	fsCmd := &ToFilesystem{Common: c.Common, Root: root, RootMountSpec: c.RootMountSpec, Replace: "alongside",
		SkipFinalize: true, AcknowledgeDestructive: true}
	return fsCmd.run(ctx, e)
}

func (c *PrintConfiguration) run(_ context.Context, e *env) error {
	arch, err := kargs.HostArch()
	if err != nil {
		return err
	}
	cfg, err := installconfig.Load(c.ConfigRoot, arch)
	if err != nil {
		return err
	}
	if !c.All {
		cfg = cfg.Public()
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding the configuration: %w", err)
	}
	fmt.Fprintf(e.stdout, "%s\n", b)
	return nil
}
