// Command bootc-kargs computes a deployment's kernel command line from the current one and the
// kargs.d of the old and new images: machine-local arguments survive, image-owned ones follow
// the image.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/kargs"
)

// CLI is the command line.
type CLI struct {
	NewRoot     string `help:"Root filesystem of the new image." required:"" type:"existingdir" placeholder:"DIR"`
	OldRoot     string `help:"Root filesystem of the image the current command line came from (omit on first install)." type:"existingdir" placeholder:"DIR"`
	Current     string `help:"Current kernel command line." xor:"current" placeholder:"ARGS"`
	CurrentFile string `help:"Read the current kernel command line from this file ('-' for stdin)." xor:"current" placeholder:"FILE"`
	Arch        string `help:"Architecture to select kargs.d entries for (x86_64, aarch64, powerpc64, s390x, riscv64; default: this machine's)."`
}

func main() {
	c := &CLI{}
	cli.Main("bootc-kargs", "Reconcile kernel arguments with an image's /usr/lib/bootc/kargs.d.", c,
		func(ctx context.Context, _ *kong.Context) error { return c.Run(ctx, os.Stdin, os.Stdout) })
}

// Run prints the reconciled command line.
func (c *CLI) Run(_ context.Context, stdin io.Reader, out io.Writer) error {
	arch := c.Arch
	if arch == "" {
		var err error
		if arch, err = kargs.HostArch(); err != nil {
			return err
		}
	}
	text := c.Current
	if c.CurrentFile != "" {
		var data []byte
		var err error
		if c.CurrentFile == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(c.CurrentFile)
		}
		if err != nil {
			return fmt.Errorf("reading the current command line: %w", err)
		}
		text = string(data)
	}
	current, err := cmdline.Parse(strings.TrimSpace(text))
	if err != nil {
		return fmt.Errorf("parsing the current command line: %w", err)
	}
	oldSet := kargs.Set{}
	if c.OldRoot != "" {
		if oldSet, err = kargs.Load(c.OldRoot, arch); err != nil {
			return err
		}
	}
	newSet, err := kargs.Load(c.NewRoot, arch)
	if err != nil {
		return err
	}
	result, err := kargs.Reconcile(current, oldSet, newSet)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, result.String())
	return err
}
