// Command bootc-install installs a bootable image to a disk, a prepared filesystem, or alongside an existing root.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
)

const (
	name        = "bootc-install"
	description = "Install a bootable container image to a disk or a filesystem."
)

func main() {
	c := &CLI{}
	cli.Main(name, description, c, c.runner(os.Stdout, os.Stderr))
}

// runner runs the selected subcommand.
func (c *CLI) runner(out, errOut io.Writer) func(context.Context, *kong.Context) error {
	return func(ctx context.Context, k *kong.Context) error {
		e := &env{stdout: out, stderr: errOut}
		sel := k.Selected()
		if sel == nil {
			return fmt.Errorf("no subcommand given")
		}
		cmd, ok := sel.Target.Addr().Interface().(command)
		if !ok {
			return fmt.Errorf("subcommand %s cannot be run", sel.Name)
		}
		// Installing needs root; saying so comes right after the command line is understood, so
		// that `bootc install` (which hands its arguments here unread) reports usage errors first.
		switch cmd.(type) {
		case *PrintConfiguration, *Unsupported: // read only, or refused anyway
		default:
			if os.Geteuid() != 0 {
				return errors.New("must be run as root")
			}
		}
		return cmd.run(ctx, e)
	}
}

// command is one subcommand.
type command interface {
	run(ctx context.Context, e *env) error
}

// env is what a subcommand writes to.
type env struct {
	stdout, stderr io.Writer
}

// logf prints a progress line for the person running the install.
func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.stderr, format+"\n", args...)
}

// run refuses: upstream has this verb, this build does not.
func (u *Unsupported) run(context.Context, *env) error {
	return &cli.ExitError{Code: cli.ExitUsage, Err: errors.New("not supported in this build")}
}
