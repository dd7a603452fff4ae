// Command bootc is the front for transactional, image-based operating system updates: it offers
// the verbs people and management agents use and hands each to the step tool that owns it.
package main

import (
	"context"
	"os"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
)

func main() {
	c := &CLI{}
	cli.Main("bootc", "Deploy and update a host system from bootable container images.", c,
		func(ctx context.Context, k *kong.Context) error {
			return k.Run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr})
		})
}
