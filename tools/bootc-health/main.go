// Command bootc-health assesses a boot: it runs the health checks, greenboot's and bootc's own,
// decides GREEN or RED, records why, and runs the green.d or red.d hooks.
package main

import (
	"context"
	"os"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
)

func main() {
	c := &CLI{}
	cli.Main("bootc-health", "Assess this boot with greenboot-compatible health checks.", c,
		func(ctx context.Context, k *kong.Context) error {
			return c.Run(ctx, k.Selected().Name, os.Stdout, os.Stderr)
		})
}
