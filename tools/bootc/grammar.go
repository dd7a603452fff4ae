package main

import (
	"errors"
	"os"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
)

// CLI lists the verbs. Verbs that one step tool owns entirely pass their arguments through, so
// that tool's own --help and errors are what the user sees. A verb that does not use the root
// flags lists them in unsupportedflags, and a flag kept only for compatibility says why it is
// unsupported (lib/cli refuses both); flags_test.go holds what every flag changes.
type CLI struct {
	cli.Root
	Cmdline string `help:"Kernel command line to read the booted deployment from." default:"/proc/cmdline" env:"BOOTC_CMDLINE" hidden:""`

	Upgrade    UpgradeCmd    `cmd:"" aliases:"update" help:"Download and stage an update of the booted image."`
	Switch     SwitchCmd     `cmd:"" help:"Change the image the host tracks, and stage it."`
	Rollback   RollbackCmd   `cmd:"" help:"Make the rollback deployment the default for the next boot."`
	Edit       EditCmd       `cmd:"" help:"Apply a Host document's spec (image, boot order)."`
	Status     PassCmd       `cmd:"" passthrough:"" help:"Show the host's deployments (see bootc status --help)."`
	UsrOverlay UsrOverlayCmd `cmd:"" name:"usr-overlay" aliases:"usroverlay" help:"Add a transient writable overlay on /usr." unsupportedflags:"sysroot,cmdline"`
	Install    PassCmd       `cmd:"" passthrough:"" help:"Install an image to a disk or filesystem (see bootc install --help)." unsupportedflags:"sysroot,run-dir,cmdline"`
	Container  ContainerCmd  `cmd:"" help:"Operations run while building a bootable container image."`
	Image      ImageCmd      `cmd:"" help:"Operations on the images bootc stores."`

	OfflineUpdate OfflineUpdateCmd `cmd:"" hidden:"" help:"Update from an OCI layout on a removable filesystem (run by udev through bootc-offline-update@.service)."`
}

// PassCmd hands everything after the verb to the verb's step tool.
type PassCmd struct {
	Args []string `arg:"" optional:"" passthrough:"all"`
}

// UpgradeCmd is `bootc upgrade`.
type UpgradeCmd struct {
	Quiet          bool   `help:"Do not show progress."`
	Check          bool   `help:"Only check whether an update is available (fetches the manifest and config only)." xor:"check-apply,downloaded"`
	Apply          bool   `help:"Reboot into the update if one was staged." xor:"check-apply"`
	DownloadOnly   bool   `help:"Stage the update but do not apply it at shutdown." xor:"check-apply,downloaded"`
	FromDownloaded bool   `help:"Apply a download-only staged deployment without fetching again." xor:"downloaded,downloaded-tag"`
	SoftReboot     string `help:"Prepare a soft reboot: required or auto." enum:"required,auto," default:"" unsupported:"soft reboots are not implemented; --apply reboots fully"`
	Tag            string `help:"Upgrade to this tag of the tracked image." xor:"downloaded-tag"`
	AllowFailed    bool   `help:"Stage the update even if it failed to boot here before (without it, such an image is not staged)."`
	ProgressFD     int    `help:"Write JSON Lines progress events to this file descriptor." name:"progress-fd" hidden:"" default:"-1"`
}

// SwitchCmd is `bootc switch`.
type SwitchCmd struct {
	Target                    string `arg:"" help:"Image to track from now on."`
	Quiet                     bool   `help:"Do not show progress."`
	Apply                     bool   `help:"Reboot into the new image once it is staged." xor:"apply-download"`
	DownloadOnly              bool   `help:"Stage the image but do not apply it at shutdown; a later switch replaces the stage, upgrade --from-downloaded applies it." xor:"apply-download"`
	SoftReboot                string `help:"Prepare a soft reboot: required or auto." enum:"required,auto," default:"" unsupported:"soft reboots are not implemented; --apply reboots fully"`
	Transport                 string `help:"Transport of the target: registry, oci, oci-archive, containers-storage, dir, docker-archive." default:"registry"`
	EnforceContainerSigpolicy bool   `help:"Refuse images that the container signature policy does not verify." xor:"signature"`
	AllowFailed               bool   `help:"Stage the image even if it failed to boot here before (without it, such an image is not staged)."`
	Retain                    bool   `help:"Keep the previously tracked image in the store until bootc image unretain lets it go."`
	// NoSignatureVerification is upstream's deprecated spelling of the default.
	NoSignatureVerification bool `help:"Do not verify signatures (the default)." hidden:"" xor:"signature"`
	MutateInPlace           bool `hidden:"" unsupported:"changing the booted deployment in place is not implemented"`
	ProgressFD              int  `name:"progress-fd" hidden:"" default:"-1"`
}

// RollbackCmd is `bootc rollback`.
type RollbackCmd struct {
	Apply      bool   `help:"Reboot into the rollback deployment."`
	Trial      bool   `help:"Put the rollback deployment on trial, as an update is: if its boots fail the health checks, the boot loader comes back to the current one."`
	SoftReboot string `help:"Prepare a soft reboot: required or auto." enum:"required,auto," default:"" unsupported:"soft reboots are not implemented; --apply reboots fully"`
}

// EditCmd is `bootc edit`.
type EditCmd struct {
	Filename string `short:"f" help:"Read the Host document from this file instead of opening $EDITOR." type:"path"`
	Quiet    bool   `help:"Do not show progress."`
}

// UsrOverlayCmd is `bootc usr-overlay`.
type UsrOverlayCmd struct {
	ReadOnly bool   `help:"Mount the overlay read-only (it can be made writable in a private mount namespace)."`
	Usr      string `help:"Directory to overlay." default:"/usr" env:"BOOTC_USR" hidden:""`
}

// ContainerCmd groups build-time operations.
type ContainerCmd struct {
	Lint ContainerLintCmd `cmd:"" help:"Check a root filesystem for problems that would stop it from booting or updating." unsupportedflags:"sysroot,run-dir,cmdline"`
}

// ContainerLintCmd is `bootc container lint`.
type ContainerLintCmd struct {
	Rootfs        string   `help:"Root filesystem to check." default:"/" type:"path"`
	FatalWarnings bool     `help:"Treat warnings as errors."`
	List          bool     `help:"List the checks."`
	Skip          []string `help:"Skip these checks."`
	NoTruncate    bool     `help:"Show every finding."`
}

// ImageCmd groups image operations.
type ImageCmd struct {
	List          ImageListCmd          `cmd:"" help:"List the host image and the logically bound images."`
	CopyToStorage ImageCopyToStorageCmd `cmd:"" help:"Copy the booted image into container storage (not in this build)." unsupportedflags:"sysroot,run-dir,cmdline"`
	Unretain      ImageUnretainCmd      `cmd:"" help:"Let go of images switch --retain kept, and remove them from the store."`
}

// ImageUnretainCmd is `bootc image unretain`.
type ImageUnretainCmd struct {
	Images []string `arg:"" optional:"" help:"Retained images to let go, by reference (as bootc image list shows it) or manifest digest."`
	All    bool     `help:"Let go of every retained image."`
}

// ImageListCmd is `bootc image list`.
type ImageListCmd struct {
	Type   string `help:"Which images: all, logical or host." enum:"all,logical,host" default:"all"`
	Format string `help:"Output format: table or json." enum:"table,json" default:"table"`
}

// ImageCopyToStorageCmd is `bootc image copy-to-storage`, which this build does not implement.
type ImageCopyToStorageCmd struct {
	Source string `help:"Image to copy (default: the booted image)." unsupported:"bootc image copy-to-storage is not in this build"`
	Target string `help:"Destination in container storage." default:"containers-storage:localhost/bootc" unsupported:"bootc image copy-to-storage is not in this build"`
}

// Run implementations. Verbs whose steps are not part of this build say so and fail.

// Run hands the verb to its step tool, which shows the user's words ("bootc status") in its
// help and errors. The root flags reach bootc-status through its environment, which its own
// flags override.
func (c *PassCmd) Run(k *kong.Context, top *CLI, e *env) error {
	verb := k.Selected().Name
	tool := map[string]string{"status": "bootc-status", "install": "bootc-install"}[verb]
	env := os.Environ()
	if verb == "status" {
		env = append(env, "BOOTC_SYSROOT="+top.Sysroot, "BOOTC_RUN_DIR="+top.RunDir, "BOOTC_CMDLINE="+top.Cmdline)
	}
	if verb == "install" && len(c.Args) > 0 && c.Args[0] == "reset" {
		return runInstallReset(top, e, c.Args[1:])
	}
	// bootc-install checks for root itself, once it has read its command line.
	return e.exec(tool, "bootc "+verb, c.Args, env)
}

// Run hands the listing to bootc-bound-images, which owns both kinds of image it shows.
func (c *ImageListCmd) Run(top *CLI, e *env) error {
	return e.exec("bootc-bound-images", "bootc image", []string{
		"--sysroot", top.Sysroot, "--run-dir", top.RunDir, "--cmdline", top.Cmdline,
		"list", "--type", c.Type, "--format", c.Format,
	}, os.Environ())
}

// Run refuses: copying the booted image out of the store is not implemented yet.
func (c *ImageCopyToStorageCmd) Run() error {
	return &cli.ExitError{Code: cli.ExitUsage, Err: errors.New("not supported in this build")}
}
