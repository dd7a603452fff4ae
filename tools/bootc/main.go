// Command bootc is the front for transactional, image-based operating system updates: it offers
// the verbs people and management agents use and hands each to the step tool that owns it.
package main

import (
	"context"
	"os"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
)

const (
	name        = "bootc"
	description = "Deploy and update a host system from bootable container images."
)

func main() {
	cli.Main(name, description, &CLI{}, run)
}

// run runs the selected verb.
func run(ctx context.Context, k *kong.Context) error {
	return k.Run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr})
}
