package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"gobootc.dev/lib/assess"
	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/health"
)

// CLI is the command line.
type CLI struct {
	cli.Root
	Cmdline string `help:"Kernel command line to read the booted deployment from." default:"/proc/cmdline" env:"BOOTC_CMDLINE" hidden:""`
	EFIVars string `name:"efivars" help:"Directory of the EFI variables, where systemd-boot says it booted the host." default:"/sys/firmware/efi/efivars" env:"BOOTC_EFIVARS_DIR" hidden:"" placeholder:"DIR"`

	Check   CheckCmd   `cmd:"" help:"Make a fallback from a failed update permanent, then run the health checks and record the verdict; exit 1 when the boot is RED."`
	Bless   BlessCmd   `cmd:"" help:"After a GREEN boot: end the booted deployment's trial, so the boot loader counts no more tries, and run the green.d hooks."`
	Red     RedCmd     `cmd:"" help:"After a RED boot: run the red.d hooks, then reboot while the booted deployment is on trial, so the boot loader goes on counting; otherwise stay up."`
	List    ListCmd    `cmd:"" help:"List the checks and hooks that would run, in order." unsupportedflags:"sysroot,run-dir,cmdline,efivars"`
	Persist PersistCmd `cmd:"" hidden:"" help:"Keep this boot's health record with the booted deployment (run where the physical root is read-only)." unsupportedflags:"cmdline,efivars"`

	Fallback   FallbackCmd   `cmd:"" hidden:"" help:"Make a fallback permanent: record the failed image, write the entries with the booted deployment first (check runs it where the physical root is read-only)."`
	BlessEntry BlessEntryCmd `cmd:"" hidden:"" unsupportedflags:"efivars" help:"End the booted deployment's trial in the boot entries and grubenv (bless runs it where they are read-only)."`
}

// CheckCmd is `check`.
type CheckCmd struct {
	Root    string        `help:"Root whose checks, hooks and greenboot.conf are read and whose run/motd.d gets the login message." default:"/" type:"existingdir" placeholder:"DIR"`
	Timeout time.Duration `help:"Time each check or hook may take before it is killed with its processes." default:"20m" env:"BOOTC_HEALTH_TIMEOUT"`
}

// BlessCmd is `bless`.
type BlessCmd struct {
	Root    string        `help:"Root whose green.d hooks and greenboot.conf are read and whose run/motd.d gets the login message." default:"/" type:"existingdir" placeholder:"DIR"`
	Timeout time.Duration `help:"Time each hook may take before it is killed with its processes." default:"20m" env:"BOOTC_HEALTH_TIMEOUT"`
}

// RedCmd is `red`.
type RedCmd struct {
	Root          string        `help:"Root whose red.d hooks and greenboot.conf are read and whose run/motd.d gets the login message." default:"/" type:"existingdir" placeholder:"DIR"`
	Timeout       time.Duration `help:"Time each hook may take before it is killed with its processes." default:"20m" env:"BOOTC_HEALTH_TIMEOUT"`
	RebootCommand string        `help:"Command line (words split at spaces) that reboots the host." default:"systemctl reboot" env:"BOOTC_REBOOT_COMMAND" hidden:""`
}

// ListCmd is `list`.
type ListCmd struct {
	Root string `help:"Root whose checks and hooks are listed." default:"/" type:"existingdir" placeholder:"DIR"`
}

// PersistCmd is `persist`.
type PersistCmd struct{}

// FallbackCmd is `fallback`.
type FallbackCmd struct{}

// BlessEntryCmd is `bless-entry`.
type BlessEntryCmd struct{}

// Run runs the selected command.
func (c *CLI) Run(ctx context.Context, cmd string, out, errOut io.Writer) error {
	log := health.JournalLog{Out: out, Err: errOut}
	switch cmd {
	case "check":
		return c.check(ctx, log, out, errOut)
	case "bless":
		return c.bless(ctx, log, out, errOut)
	case "red":
		return c.red(ctx, log, out, errOut)
	case "list":
		return c.List.run(out, errOut)
	case "persist":
		return persist(c.Layout())
	case "fallback":
		return c.fallback(ctx, out)
	case "bless-entry":
		return c.blessEntry(ctx, out)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// state assesses the boot of deployment stateroot/id.
func (c *CLI) state(stateroot, id string) (*assess.State, error) {
	return assess.Load(assess.Options{Root: c.Layout(), Stateroot: stateroot, ID: id, EFIVars: c.EFIVars})
}
