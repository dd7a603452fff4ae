// Command bootc-status prints the Host document (org.containers.bootc/v1) of a physical root:
// which deployment is booted, staged and kept for rollback.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/status"
)

// CLI is the command line; `bootc status` passes its arguments through unchanged.
type CLI struct {
	cli.Root
	Cmdline       string `help:"Kernel command line to read the booted deployment from." default:"/proc/cmdline" env:"BOOTC_CMDLINE" hidden:""`
	Format        string `help:"Output format: humanreadable, yaml or json (default: humanreadable on a terminal, yaml otherwise)." placeholder:"FORMAT"`
	JSON          bool   `help:"Same as --format=json."`
	FormatVersion int    `help:"Version of the output format (0 and 1 both mean v1)." default:"1"`
	Booted        bool   `help:"Only show the booted deployment."`
	Verbose       bool   `short:"v" help:"Show more detail in the human-readable output."`
}

func main() {
	c := &CLI{}
	cli.Main("bootc-status", "Show the state of a bootc host.", c, func(ctx context.Context, _ *kong.Context) error {
		return c.Run(ctx, os.Stdout)
	})
}

// Run prints the status in the chosen format.
func (c *CLI) Run(_ context.Context, out io.Writer) error {
	if c.FormatVersion != 0 && c.FormatVersion != 1 {
		return usage("--format-version %d is not supported (use 0 or 1)", c.FormatVersion)
	}
	format := c.Format
	switch {
	case c.JSON && format != "" && format != "json":
		return usage("--json conflicts with --format=%s", format)
	case c.JSON:
		format = "json"
	case format == "" && cli.IsTerminal(out):
		format = "humanreadable"
	case format == "":
		format = "yaml"
	}
	switch format {
	case "humanreadable", "yaml", "json":
	default:
		return usage("--format %q is not one of humanreadable, yaml, json", format)
	}
	h, err := status.Build(status.Options{Root: c.Layout(), Cmdline: c.Cmdline, BootedOnly: c.Booted})
	if err != nil {
		return fmt.Errorf("reading status: %w", err)
	}
	switch format {
	case "humanreadable":
		return status.Human(out, h, c.Verbose)
	case "json":
		b, err := h.MarshalCanonicalJSON()
		if err != nil {
			return err
		}
		_, err = out.Write(append(b, '\n'))
		return err
	default:
		b, err := h.MarshalYAMLDoc()
		if err != nil {
			return err
		}
		_, err = out.Write(b)
		return err
	}
}

// usage is an error in the command line, which exits with the usage status as kong's own do.
func usage(format string, args ...any) error {
	return &cli.ExitError{Code: cli.ExitUsage, Err: fmt.Errorf(format, args...)}
}
