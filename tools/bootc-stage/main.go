// Command bootc-stage builds a deployment from a fetched image, puts its kernel in /boot and records it as staged for the next boot.
package main

import "gobootc.dev/lib/cli"

func main() { cli.NotBuilt("bootc-stage") }
