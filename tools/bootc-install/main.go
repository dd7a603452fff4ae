// Command bootc-install installs a bootable image to a disk, a prepared filesystem, or alongside an existing root.
package main

import "gobootc.dev/lib/cli"

func main() { cli.NotBuilt("bootc-install") }
