package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/installconfig"
	"gobootc.dev/lib/kargs"
	"gobootc.dev/lib/layout"
)

// CLI is the command line.
type CLI struct {
	ToDisk             ToDisk             `cmd:"" name:"to-disk" help:"Partition a disk (or an image file with --via-loopback), make filesystems and install to them."`
	ToFilesystem       ToFilesystem       `cmd:"" name:"to-filesystem" help:"Install to a prepared, mounted filesystem."`
	ToExistingRoot     ToExistingRoot     `cmd:"" name:"to-existing-root" help:"Install alongside the running system, to the host's root mounted at ROOT."`
	PrintConfiguration PrintConfiguration `cmd:"" name:"print-configuration" help:"Print the merged install configuration of this image as JSON."`
	// Upstream's other install verbs, refused by name (bootc runs `install reset` itself).
	Finalize         Unsupported `cmd:"" hidden:"" help:"Check a to-filesystem install (not in this build)." passthrough:""`
	EnsureCompletion Unsupported `cmd:"" name:"ensure-completion" hidden:"" help:"Complete an install made by another installer (not in this build)." passthrough:""`
}

// Unsupported is an upstream verb this build does not have; whatever follows it is ignored.
type Unsupported struct {
	Args []string `arg:"" optional:"" passthrough:""`
}

// Common are the options every install shares.
type Common struct {
	SourceImgref              string   `name:"source-imgref" help:"Image to install, in containers-transports(5) syntax (oci:/path:tag, docker://…, containers-storage:…). Default: this container's own image." placeholder:"REF"`
	TargetImgref              string   `name:"target-imgref" help:"Image the installed system follows for updates (default: the source)." placeholder:"IMAGE"`
	TargetTransport           string   `name:"target-transport" help:"Transport of --target-imgref: registry, oci, oci-archive, containers-storage, dir, docker-archive." default:"registry" placeholder:"NAME"`
	EnforceContainerSigpolicy bool     `name:"enforce-container-sigpolicy" help:"Verify the image with containers-policy.json(5), now and on every update."`
	SkipFetchCheck            bool     `name:"skip-fetch-check" help:"Do not check that the target image can be fetched." xor:"fetch-check"`
	Karg                      []string `help:"Kernel argument to add (repeatable)." sep:"none" placeholder:"KEY[=VALUE]"`
	KargDelete                []string `name:"karg-delete" help:"Kernel argument to remove: KEY removes every value, KEY=VALUE that one (repeatable)." sep:"none" placeholder:"KEY[=VALUE]"`
	RootSSHAuthorizedKeys     string   `name:"root-ssh-authorized-keys" help:"Install these SSH public keys for root (as a tmpfiles.d entry)." placeholder:"FILE"`
	Stateroot                 string   `help:"Stateroot to install into (default: the install configuration's, else default)." placeholder:"NAME"`
	Bootloader                string   `help:"Boot loader: grub (BIOS), systemd (systemd-boot, UEFI) or none (boot entries only). Default: the install configuration's, else grub." placeholder:"NAME"`
	BoundImages               string   `name:"bound-images" help:"How the image's bound images are provided: stored or pull." default:"stored" placeholder:"MODE"`
	// Upstream's flags: the default spelled out, a no-op, and what this build does not do.
	RunFetchCheck                 bool     `name:"run-fetch-check" help:"Check that the target image can be fetched (the default)." xor:"fetch-check"`
	TargetNoSignatureVerification bool     `name:"target-no-signature-verification" hidden:"" help:"Do not verify signatures on updates (the default)."`
	DisableSelinux                bool     `name:"disable-selinux" help:"Disable SELinux in the target." unsupported:"the installed system is not SELinux-labelled here; the image decides"`
	BootupdSkipBootUUID           bool     `name:"bootupd-skip-boot-uuid" help:"bootupd option." unsupported:"bootupd is not used: bootc writes GRUB's configuration itself"`
	ComposefsBackend              bool     `name:"composefs-backend" help:"Install with the composefs backend." unsupported:"the composefs backend is not in this build"`
	AllowMissingVerity            bool     `name:"allow-missing-verity" help:"composefs option." unsupported:"the composefs backend is not in this build"`
	UkiAddon                      []string `name:"uki-addon" help:"composefs option." unsupported:"the composefs backend is not in this build"`
	ExperimentalUnifiedStorage    bool     `name:"experimental-unified-storage" hidden:"" help:"Pull through bootc's container storage." unsupported:"unified storage is not in this build"`

	// Where the install configuration and the container environment are read: the running
	// container's root. Tests point them elsewhere.
	ConfigRoot   string `name:"config-root" default:"/" env:"BOOTC_INSTALL_CONFIG_ROOT" hidden:""`
	ContainerEnv string `name:"containerenv" default:"/run/.containerenv" env:"BOOTC_CONTAINERENV" hidden:""`
}

// ToDisk is `to-disk DEVICE`.
type ToDisk struct {
	Common
	Device       string `arg:"" help:"Block device to install to (an image file with --via-loopback)." placeholder:"DEVICE"`
	Wipe         bool   `help:"Erase existing partitions and filesystems of DEVICE."`
	Filesystem   string `help:"Root filesystem type: xfs, ext4 or btrfs (default: the install configuration's, else ext4)." placeholder:"TYPE"`
	RootSize     string `name:"root-size" help:"Size of the root partition (M, G or T suffix; MiB without one). Default: the rest of the disk." placeholder:"SIZE"`
	BlockSetup   string `name:"block-setup" help:"Block device setup: direct." placeholder:"NAME"`
	ViaLoopback  bool   `name:"via-loopback" help:"DEVICE is an image file: attach it to a loop device for the install."`
	GenericImage bool   `name:"generic-image" help:"Install both GRUB (BIOS) and systemd-boot (UEFI fallback path); touch no firmware variables."`
	SkipFinalize bool   `name:"skip-finalize" help:"Skip trimming and freezing the new filesystem before it is unmounted."`
}

// ToFilesystem is `to-filesystem ROOT`.
type ToFilesystem struct {
	Common
	Root                   string  `arg:"" help:"Mounted root filesystem to install to." placeholder:"ROOT"`
	RootMountSpec          *string `name:"root-mount-spec" help:"Root filesystem for the kernel's root= (default: UUID=<uuid of ROOT>); an empty value omits root=." placeholder:"SPEC"`
	BootMountSpec          *string `name:"boot-mount-spec" help:"fstab source of a separately mounted ROOT/boot (default: UUID=<its uuid>)." placeholder:"SPEC"`
	Replace                string  `help:"ROOT is not empty: wipe (delete its contents first) or alongside (keep them)." placeholder:"MODE"`
	SkipFinalize           bool    `name:"skip-finalize" help:"Leave ROOT as it is afterwards (no trim, no freeze)."`
	AcknowledgeDestructive bool    `name:"acknowledge-destructive" help:"Confirm installing to the running system's own root."`
	GenericImage           bool    `name:"generic-image" help:"Install every boot loader." unsupported:"only to-disk installs both boot loaders"`
}

// ToExistingRoot is `to-existing-root [ROOT]`.
type ToExistingRoot struct {
	Common
	Root                   string  `arg:"" optional:"" default:"/target" help:"Where the host's root is mounted (podman run -v /:/target)." placeholder:"ROOT"`
	RootMountSpec          *string `name:"root-mount-spec" help:"Root filesystem for the kernel's root= (default: UUID=<uuid of ROOT>)." placeholder:"SPEC"`
	AcknowledgeDestructive bool    `name:"acknowledge-destructive" help:"Confirm installing to the running system's own root."`
	Replace                string  `help:"How ROOT's existing system is treated: alongside (kept)." enum:"alongside" default:"alongside" placeholder:"MODE"`
	Cleanup                bool    `help:"Remove the previous system's files on the first boot." unsupported:"removing the previous system after the first boot is not in this build"`
	GenericImage           bool    `name:"generic-image" help:"Install every boot loader." unsupported:"only to-disk installs both boot loaders"`
}

// PrintConfiguration is `print-configuration`.
type PrintConfiguration struct {
	All        bool   `help:"Include the kernel arguments (kargs, karg-deletes)."`
	ConfigRoot string `name:"config-root" default:"/" env:"BOOTC_INSTALL_CONFIG_ROOT" hidden:""`
}

// validate checks the options that depend neither on the host nor on the image.
func (c *Common) validate() error {
	if c.Stateroot != "" {
		if err := layout.CheckName("stateroot", c.Stateroot); err != nil {
			return fmt.Errorf("--stateroot: %w", err)
		}
	}
	if c.Bootloader != "" && !slices.Contains(installconfig.Bootloaders, c.Bootloader) {
		return fmt.Errorf("--bootloader %q: want one of %s", c.Bootloader, strings.Join(installconfig.Bootloaders, ", "))
	}
	if c.BoundImages != "stored" && c.BoundImages != "pull" {
		return fmt.Errorf("--bound-images %q: want stored or pull", c.BoundImages)
	}
	extra, err := cmdline.FromArgs(c.Karg)
	if err != nil {
		return fmt.Errorf("--karg: %w", err)
	}
	if extra.Has(layout.DeploymentKarg) {
		return fmt.Errorf("--karg %s: set by bootc itself and cannot be given", layout.DeploymentKarg)
	}
	for _, d := range c.KargDelete {
		if _, err := cmdline.ParseArg(d); err != nil {
			return fmt.Errorf("--karg-delete %q: %w", d, err)
		}
	}
	return nil
}

// config loads the install configuration of the running image.
func (c *Common) config() (*installconfig.Config, error) {
	arch, err := kargs.HostArch()
	if err != nil {
		return nil, err
	}
	return installconfig.Load(c.ConfigRoot, arch)
}

// stateroot is the flag's, else the configuration's, else the default.
func (c *Common) stateroot(cfg *installconfig.Config) string {
	switch {
	case c.Stateroot != "":
		return c.Stateroot
	case cfg.Stateroot != "":
		return cfg.Stateroot
	}
	return layout.DefaultStateroot
}

// bootloader is the flag's, else the configuration's, else grub.
func (c *Common) bootloader(cfg *installconfig.Config) string {
	switch {
	case c.Bootloader != "":
		return c.Bootloader
	case cfg.Bootloader != "":
		return cfg.Bootloader
	}
	return "grub"
}

var sizeRe = regexp.MustCompile(`^([0-9]+)([MGT]?)(i?B)?$`)

// parseSize reads a partition size in MiB: 512, 512M, 20G, 1T (binary units).
func parseSize(s string) (int64, error) {
	m := sizeRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("size %q: want a number with an optional M, G or T suffix", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("size %q: want a positive number", s)
	}
	switch m[2] {
	case "G":
		n <<= 10
	case "T":
		n <<= 20
	}
	return n, nil
}
