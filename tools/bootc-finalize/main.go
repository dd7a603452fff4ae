// Command bootc-finalize runs at shutdown: it merges /etc three ways and makes the staged deployment the default boot entry.
package main

import "gobootc.dev/lib/cli"

func main() { cli.NotBuilt("bootc-finalize") }
