// Command bootc-fetch resolves a bootable image, fetches its manifest and config, and fetches only
// the missing layers into the content store.
//
// It links containers/image and must be built with the tags listed in the TAGS file beside this
// source (containers_image_openpgp: pure-Go OpenPGP signature verification instead of the cgo
// gpgme binding).
package main

import (
	"context"
	"os"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
)

func main() {
	c := &CLI{}
	cli.Main("bootc-fetch", "Fetch a bootable container image into the content store.", c,
		func(ctx context.Context, _ *kong.Context) error {
			var progress *os.File
			if c.ProgressFD > 0 {
				progress = os.NewFile(uintptr(c.ProgressFD), "progress-fd")
				defer progress.Close()
				c.Progress = progress
			}
			return c.Run(ctx, os.Stdout, os.Stderr)
		})
}
