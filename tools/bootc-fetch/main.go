// Command bootc-fetch resolves a bootable image, fetches its manifest and config, and fetches only the missing layers into the content store.
package main

import "gobootc.dev/lib/cli"

func main() { cli.NotBuilt("bootc-fetch") }
