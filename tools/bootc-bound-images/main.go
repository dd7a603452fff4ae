// Command bootc-bound-images pulls the container images a deployment declares into bootc's own storage and removes unreferenced ones.
package main

import "gobootc.dev/lib/cli"

func main() { cli.NotBuilt("bootc-bound-images") }
