// Command bootc-stage builds a deployment from a fetched image, puts its kernel in /boot and records it as staged for the next boot.
package main

import (
	"context"
	"io"
	"os"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/record"
)

const (
	name        = "bootc-stage"
	description = "Stage a fetched image as the deployment to boot next."
)

func main() {
	c := &CLI{}
	cli.Main(name, description, c, c.runner(os.Stdout, os.Stderr))
}

// runner runs the stage and writes the --result file.
func (c *CLI) runner(out, errOut io.Writer) func(context.Context, *kong.Context) error {
	return func(ctx context.Context, _ *kong.Context) error {
		res, err := c.Run(ctx, out, errOut)
		if err != nil {
			return err
		}
		if c.Result == "" {
			return nil
		}
		return record.WriteResult(c.Result, res)
	}
}
