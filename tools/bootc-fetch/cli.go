package main

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/imgref"
	"gobootc.dev/lib/layout"
)

// CLI is the command line. Tests fill it in and call Run.
type CLI struct {
	cli.Root
	Image     string `arg:"" optional:"" help:"Image to fetch (default: the image the booted deployment tracks)." placeholder:"IMAGE"`
	Transport string `help:"Transport of IMAGE: registry, oci, oci-archive, containers-storage, dir, docker-archive." default:"registry" placeholder:"NAME"`
	Tag       string `help:"Fetch the tracked image with its tag replaced by TAG." placeholder:"TAG"`
	Check     bool   `help:"Only fetch the manifest and config, report whether an update is available and remember it for status."`
	Quiet     bool   `short:"q" help:"Show no progress."`

	ProgressFD int    `name:"progress-fd" help:"Write progress as JSON Lines (progress protocol v0) to this file descriptor." placeholder:"N"`
	Result     string `help:"Write a JSON summary of the outcome to FILE." placeholder:"FILE"`

	EnforceContainerSigpolicy bool `help:"Verify the image with containers-policy.json(5) and refuse a policy that accepts anything."`

	Authfile        string        `help:"Pull secret to use instead of the ostree auth.json search." hidden:"" placeholder:"FILE"`
	RegistriesConf  string        `name:"registries-conf" help:"registries.conf to use instead of the system one." hidden:"" placeholder:"FILE"`
	RegistriesD     string        `name:"registries.d" help:"registries.d directory (signature lookaside) instead of the system one." hidden:"" placeholder:"DIR"`
	SignaturePolicy string        `help:"policy.json to use instead of the system one." hidden:"" placeholder:"FILE"`
	Cmdline         string        `help:"Kernel command line to find the booted deployment from." default:"/proc/cmdline" env:"BOOTC_CMDLINE" hidden:""`
	LockWait        time.Duration `help:"How long to wait for another bootc operation to finish." default:"1h" hidden:""`

	// Progress receives the JSON Lines events when set (main sets it from --progress-fd).
	Progress io.Writer `kong:"-"`
	// AuthSearch replaces the pull-secret search list (tests).
	AuthSearch []string `kong:"-"`
}

// layoutRoot applies the defaults a zero CLI (built by tests) lacks.
func (c *CLI) layoutRoot() layout.Root {
	if c.Sysroot == "" {
		c.Sysroot = layout.DefaultSysroot
	}
	return c.Layout()
}

// validate checks the flags that do not depend on the host.
func (c *CLI) validate() error {
	if c.Image == "" {
		if c.Transport != "" && c.Transport != string(imgref.Registry) {
			return fmt.Errorf("--transport %s needs IMAGE", c.Transport)
		}
	} else if c.Tag != "" {
		return fmt.Errorf("--tag replaces the tag of the tracked image; with IMAGE, write the tag in IMAGE")
	}
	if c.ProgressFD < 0 {
		return fmt.Errorf("--progress-fd %d: not a file descriptor", c.ProgressFD)
	}
	if c.ProgressFD > 0 {
		var st syscall.Stat_t
		if err := syscall.Fstat(c.ProgressFD, &st); err != nil {
			return fmt.Errorf("--progress-fd %d: %w", c.ProgressFD, err)
		}
	}
	return nil
}

// signature is the verification mode the flags add to ref's own.
func (c *CLI) signature(own *host.ImageSignature) *host.ImageSignature {
	if c.EnforceContainerSigpolicy {
		return &host.ImageSignature{Mode: host.SignatureContainerPolicy}
	}
	return own
}

// cwd is where relative IMAGE paths are taken from.
func cwd() string {
	d, err := os.Getwd()
	if err != nil {
		return "/"
	}
	return d
}
