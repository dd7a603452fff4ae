package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/health"
)

// CLI is the command line.
type CLI struct {
	cli.Root
	Cmdline string `help:"Kernel command line to read the booted deployment from." default:"/proc/cmdline" env:"BOOTC_CMDLINE" hidden:""`

	Check   CheckCmd   `cmd:"" help:"Run the health checks, record the verdict, run the green.d or red.d hooks; exit 1 when the boot is RED."`
	List    ListCmd    `cmd:"" help:"List the checks and hooks that would run, in order." unsupportedflags:"sysroot,run-dir,cmdline"`
	Persist PersistCmd `cmd:"" hidden:"" help:"Keep this boot's health record with the booted deployment (check runs it where the physical root is read-only)." unsupportedflags:"cmdline"`
}

// CheckCmd is `check`.
type CheckCmd struct {
	Root    string        `help:"Root whose checks, hooks and greenboot.conf are read and whose run/motd.d gets the login message." default:"/" type:"existingdir" placeholder:"DIR"`
	Timeout time.Duration `help:"Time each check or hook may take before it is killed with its processes." default:"20m" env:"BOOTC_HEALTH_TIMEOUT"`
}

// ListCmd is `list`.
type ListCmd struct {
	Root string `help:"Root whose checks and hooks are listed." default:"/" type:"existingdir" placeholder:"DIR"`
}

// PersistCmd is `persist`.
type PersistCmd struct{}

// Run runs the selected command.
func (c *CLI) Run(ctx context.Context, cmd string, out, errOut io.Writer) error {
	switch cmd {
	case "check":
		return c.check(ctx, health.JournalLog{Out: out, Err: errOut}, out, errOut)
	case "list":
		return c.List.run(out, errOut)
	case "persist":
		return persist(c.Layout())
	}
	return fmt.Errorf("unknown command %q", cmd)
}
