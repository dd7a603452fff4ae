// Command bootc-health assesses a boot: it makes a fallback from a failed update permanent, runs
// the health checks, greenboot's and bootc's own, decides GREEN or RED and records why; then it
// blesses a GREEN boot (the boot loader counts no more tries) and runs green.d, or runs red.d
// after a RED one and reboots while the deployment is on trial.
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
