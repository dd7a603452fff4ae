// Command bootc-bound-images pulls the container images a deployment declares into bootc's own storage and removes unreferenced ones.
package main

import (
	"context"
	"os"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
)

const (
	name        = "bootc-bound-images"
	description = "Keep the logically bound images of bootc's deployments in bootc's container storage."
)

func main() {
	c := &CLI{}
	cli.Main(name, description, c, func(ctx context.Context, k *kong.Context) error {
		return c.Run(ctx, k.Selected().Name, os.Stdout, os.Stderr)
	})
}
