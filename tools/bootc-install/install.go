package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/boundimage"
	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/deploy"
	"gobootc.dev/lib/durable"
	"gobootc.dev/lib/installconfig"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/store"
)

// target is where an install goes, as to-disk or to-filesystem worked it out.
type target struct {
	// root is the mounted physical root.
	root string
	// rootSpec names the root filesystem for root=; empty omits root=.
	rootSpec string
	// disk is the whole disk GRUB's boot code goes to; empty when none was found.
	disk string
	// bootUUID is the UUID of the filesystem holding /boot (GRUB searches for it); may be empty.
	bootUUID string
	// bootSpec is the fstab source of a separate /boot filesystem mounted at root/boot.
	bootSpec string
	// esp is the EFI system partition to_disk made; nil otherwise.
	esp *esp
	// bootloader is grub, systemd or none; generic adds systemd-boot to GRUB.
	bootloader string
	generic    bool
	// mountpoint: root is a mount of its own, which finalize may trim and freeze.
	mountpoint bool
}

// esp is an EFI system partition that cannot be mounted here: it is filled with mtools.
type esp struct {
	dev  string
	uuid string
}

// fatBoot reports whether /boot is a FAT filesystem: systemd-boot reads entries and kernels
// only from the ESP, so with it the ESP is /boot.
func (t *target) fatBoot() bool { return t.bootloader == "systemd" || t.generic }

// installer carries one install's inputs.
type installer struct {
	e         *env
	c         *Common
	cfg       *installconfig.Config
	src       source
	stateroot string
	keys      []byte // root's SSH authorized keys; nil for none
}

// provenance is the install-time record of where the system came from (layout Provenance).
type provenance struct {
	Image       string    `json:"image"`
	Digest      string    `json:"digest"`
	TargetImage string    `json:"target-image"`
	Kernel      string    `json:"kernel"`
	Time        time.Time `json:"time"`
	Version     string    `json:"version,omitempty"`
	BoundImages string    `json:"bound-images"`
}

// install puts the image on the target's root. Step order: the bootc layout; the writer lock;
// fetch (and the target image check); build the deployment with its kernel command line; the
// bound images; its writable /etc (a copy of the image's, plus the root SSH keys and the fstab
// lines); the boot configuration, entries and boot loader; the provenance record; a sync.
func (in *installer) install(ctx context.Context, t *target) (*record.Deployment, error) {
	tmp, err := os.MkdirTemp("", "bootc-install-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	r, espStage, err := in.initLayout(t, tmp)
	if err != nil {
		return nil, err
	}
	l, err := lock.Acquire(ctx, r.Lock(), lock.Options{Operation: "install"})
	if err != nil {
		return nil, err
	}
	defer l.Release()
	f := &fetcher{r: r, lock: l, tmp: tmp, sigpol: in.c.EnforceContainerSigpolicy, stdout: in.e.stderr, stderr: in.e.stderr}
	fetched, err := in.fetchImage(ctx, f)
	if err != nil {
		return nil, err
	}
	d, err := in.buildDeployment(ctx, r, t, fetched.ManifestDigest)
	if err != nil {
		return nil, err
	}
	deployRoot := r.Deployment(d.Stateroot, d.ID)
	if err := in.boundImages(ctx, f, deployRoot); err != nil {
		return nil, err
	}
	if err := writeEtc(r, d, t, in.keys); err != nil {
		return nil, err
	}
	if err := in.writeBoot(ctx, r, d, t, espStage); err != nil {
		return nil, err
	}
	if err := in.writeProvenance(r, d); err != nil {
		return nil, err
	}
	if err := durable.SyncFS(r.Phys); err != nil {
		return nil, err
	}
	in.e.logf("Installed %s into %s (deployment root %s)", in.src.target, t.root, deployRoot)
	return d, nil
}

// initLayout makes the bootc layout on the target's root, its run directory in tmp, and
// refuses a root that already holds a deployment. When /boot is an ESP that cannot be mounted
// here, espStage is the copy of its tree, in tmp, that the install fills.
func (in *installer) initLayout(t *target, tmp string) (r layout.Root, espStage string, err error) {
	r = layout.New(t.root, filepath.Join(tmp, "run"))
	if err := os.MkdirAll(r.Run, 0o755); err != nil {
		return r, "", err
	}
	if err := os.MkdirAll(r.Boot, 0o755); err != nil {
		return r, "", fmt.Errorf("creating %s: %w", r.Boot, err)
	}
	if t.fatBoot() && t.esp != nil {
		// The ESP is filled from a copy of its tree at the end: vfat cannot be mounted here.
		espStage = filepath.Join(tmp, "esp")
		r.Boot = espStage
	}
	if err := r.Init(in.stateroot); err != nil {
		return r, "", err
	}
	if ds, err := record.ListDeployments(r); err != nil {
		return r, "", err
	} else if len(ds) > 0 {
		return r, "", fmt.Errorf("%s already holds a bootc deployment (%s/%s)", t.root, ds[0].Stateroot, ds[0].ID)
	}
	return r, espStage, nil
}

// fetchImage stores the source image in the new root and, unless --skip-fetch-check, checks
// that the target image the system will follow can be fetched too.
func (in *installer) fetchImage(ctx context.Context, f *fetcher) (*record.FetchResult, error) {
	in.e.logf("Fetching %s", in.src.fetch)
	fetched, err := f.fetch(ctx, in.src.fetch, false)
	if err != nil {
		return nil, err
	}
	if !in.src.target.Equal(in.src.fetch) && !in.c.SkipFetchCheck {
		in.e.logf("Checking that %s can be fetched", in.src.target)
		if _, err := f.fetch(ctx, in.src.target, true); err != nil {
			return nil, err
		}
	}
	return fetched, nil
}

// buildDeployment builds the deployment of the fetched image, settles its kernel command line
// and target image, and records it.
func (in *installer) buildDeployment(ctx context.Context, r layout.Root, t *target, image string) (*record.Deployment, error) {
	s, err := store.Open(r.Store())
	if err != nil {
		return nil, err
	}
	start, err := in.startKargs(t)
	if err != nil {
		return nil, err
	}
	d, err := deploy.Build(ctx, deploy.Options{Root: r, Store: s, Stateroot: in.stateroot, Image: image, Kargs: start})
	if err != nil {
		return nil, err
	}
	in.e.logf("Deployed %s/%s (kernel %s)", d.Stateroot, d.ID, d.Kernel)
	if d.Kargs, err = in.finishKargs(d.Kargs); err != nil {
		return nil, err
	}
	d.Image.Ref = in.src.targetRef()
	if err := record.WriteDeployment(r, d); err != nil {
		return nil, err
	}
	return d, nil
}

// writeProvenance records where the installed system came from, and when.
func (in *installer) writeProvenance(r layout.Root, d *record.Deployment) error {
	var uts unix.Utsname
	unix.Uname(&uts)
	prov := provenance{
		Image: in.src.fetch.TransportString(), Digest: d.Image.ManifestDigest, TargetImage: in.src.target.TransportString(),
		Kernel: unix.ByteSliceToString(uts.Release[:]), Time: time.Now().UTC(), Version: d.Image.Version, BoundImages: in.c.BoundImages,
	}
	return record.Write(r.Provenance(), prov)
}

// startKargs is the command line deploy.Build starts from: the root filesystem, rw (the
// initramfs mounts the physical root writable and makes the deployment read-only itself),
// then the install configuration's arguments. Build appends the image's kargs.d.
func (in *installer) startKargs(t *target) ([]string, error) {
	var out []string
	if t.rootSpec != "" {
		out = append(out, "root="+t.rootSpec)
	}
	out = append(out, "rw")
	out = append(out, in.cfg.Kargs...)
	if _, err := cmdline.FromArgs(out); err != nil {
		return nil, fmt.Errorf("kernel arguments of the install configuration: %w", err)
	}
	return out, nil
}

// finishKargs applies the deletions (the configuration's, then --karg-delete) and appends
// --karg, which therefore survives a deletion of the same key.
func (in *installer) finishKargs(line string) (string, error) {
	c, err := cmdline.Parse(line)
	if err != nil {
		return "", fmt.Errorf("kernel arguments: %w", err)
	}
	for _, del := range append(append([]string{}, in.cfg.KargDeletes...), in.c.KargDelete...) {
		a, err := cmdline.ParseArg(del)
		if err != nil {
			return "", fmt.Errorf("kernel argument to delete %q: %w", del, err)
		}
		if a.HasValue() {
			c.RemoveExact(a)
		} else {
			c.Remove(a.Key())
		}
	}
	extra, err := cmdline.FromArgs(in.c.Karg)
	if err != nil {
		return "", fmt.Errorf("--karg: %w", err)
	}
	if err := c.Append(extra.Args()...); err != nil {
		return "", fmt.Errorf("--karg: %w", err)
	}
	return c.String(), nil
}

// checkEmpty refuses a root that holds anything but lost+found and mount points.
func checkEmpty(root string) error {
	ents, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("reading %s: %w", root, err)
	}
	for _, e := range ents {
		if e.Name() == "lost+found" {
			continue
		}
		if mp, _ := isMountpoint(filepath.Join(root, e.Name())); mp {
			continue
		}
		return fmt.Errorf("%s is not empty (it holds %s); use --replace wipe or --replace alongside", root, e.Name())
	}
	return nil
}

// wipeRoot deletes what root holds on its own filesystem; other filesystems mounted below it
// stay as they are.
func wipeRoot(root string) error {
	ents, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("reading %s: %w", root, err)
	}
	for _, e := range ents {
		p := filepath.Join(root, e.Name())
		if mp, _ := isMountpoint(p); mp || e.Name() == "lost+found" {
			continue
		}
		if err := removeSameFS(p, root); err != nil {
			return fmt.Errorf("wiping %s: %w", root, err)
		}
	}
	return nil
}

// removeSameFS removes p like os.RemoveAll but leaves directories that are mount points (and
// what lies under them) alone.
func removeSameFS(p, root string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	if fi.IsDir() {
		if mp, _ := isMountpoint(p); mp {
			return nil
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := removeSameFS(filepath.Join(p, e.Name()), root); err != nil {
				return err
			}
		}
		if err := os.Remove(p); err != nil && !strings.Contains(err.Error(), "busy") {
			return err
		}
		return nil
	}
	return os.Remove(p)
}

// bootConfig is what later writers of boot entries need to know about /boot.
func bootConfig(t *target) *record.BootConfig {
	bc := &record.BootConfig{Version: record.FormatVersion, Bootloader: t.bootloader, Grub: t.bootloader == "grub" || t.generic}
	if t.generic {
		// The entries are laid out for systemd-boot; GRUB is only the BIOS fallback.
		bc.Bootloader = "systemd"
	}
	switch {
	case t.fatBoot():
		bc.FAT, bc.BootSeparate = true, true
		if t.esp != nil {
			bc.FSUUID = t.esp.uuid
		} else {
			bc.FSUUID = t.bootUUID
		}
	default:
		bc.BootSeparate = t.bootSpec != ""
		bc.FSUUID = t.bootUUID
	}
	return bc
}

// writeBoot writes the boot configuration record, the boot entry of the one deployment and the
// boot loader.
func (in *installer) writeBoot(ctx context.Context, r layout.Root, d *record.Deployment, t *target, espStage string) error {
	bc := bootConfig(t)
	if err := record.Write(r.BootConfig(), bc); err != nil {
		return err
	}
	opts := bootloader.OptionsFor(bc, nil)
	// Install's own finalize freezes the filesystem once at the end; a directory that is not a
	// mount of its own (a test root, a staged ESP tree) must not freeze the host's filesystem.
	opts.NoFreeze = true
	if err := bootloader.WriteSet(r.Boot, []bootloader.Deployment{bootloader.FromRecord(d)}, opts); err != nil {
		return fmt.Errorf("writing the boot entry: %w", err)
	}
	deployRoot := r.Deployment(d.Stateroot, d.ID)
	if t.bootloader == "grub" || t.generic {
		grubBoot := r.Boot
		gopts := opts
		if espStage != "" {
			// GRUB's files stay on the root filesystem; its menu is found on the ESP.
			grubBoot = layout.BootDir(r.Phys)
		}
		if err := bootloader.WriteGrubConfig(grubBoot, gopts); err != nil {
			return err
		}
		if err := in.installGrub(ctx, grubBoot, deployRoot, t); err != nil {
			return err
		}
	}
	if t.fatBoot() {
		if err := installSystemdBoot(r.Boot, deployRoot, d.Image.Architecture); err != nil {
			return err
		}
		if espStage != "" {
			if err := copyToESP(ctx, espStage, t.esp.dev); err != nil {
				return err
			}
			in.e.logf("Filled the ESP %s (systemd-boot, boot entries, kernel)", t.esp.dev)
		}
	}
	return nil
}

// HostStorage is the host's container storage, mounted into the install container; with
// --bound-images stored the bound images are copied from it.
var HostStorage = "/var/lib/containers/storage"

// boundImages puts the images the deployment binds into the new root's bootc storage, so they
// are there on the first boot: copied from the host's storage (stored) or pulled (pull).
func (in *installer) boundImages(ctx context.Context, f *fetcher, deployRoot string) error {
	declared, err := boundimage.Declares(deployRoot)
	if err != nil || !declared {
		return err
	}
	args := []string{"--sysroot", f.r.Phys, "sync", "--root", deployRoot}
	if in.c.BoundImages == "stored" {
		args = append(args, "--from-storage", HostStorage)
	}
	cmd, err := cli.StepCommand(ctx, "bootc-bound-images", args...)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f.stdout, f.stderr
	return cli.RunStep(cmd, f.lock)
}
