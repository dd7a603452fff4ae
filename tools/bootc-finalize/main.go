// Command bootc-finalize runs at shutdown: it merges /etc three ways into the staged deployment
// and makes it the default boot entry, with the booted deployment kept for rollback. On the next
// boot, --cleanup removes the deployments the new entries dropped.
package main

import (
	"context"
	"os"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
)

func main() {
	c := &CLI{}
	cli.Main("bootc-finalize", "Apply the staged deployment: merge /etc and switch the boot entries.", c,
		func(ctx context.Context, _ *kong.Context) error { return c.Run(ctx, os.Stdout, os.Stderr) })
}
