package main

import (
	"testing"

	"gobootc.dev/lib/cli"
)

// stageFlags says what each flag changes; a flag added to the grammar fails the test until it
// has an entry here (or is refused, and marked cli.NotSupported).
var stageFlags = map[string]string{
	"--sysroot":              "physical root the deployment is built in",
	"--run-dir":              "per-boot state directory: staged and booted records",
	"--cmdline":              "command line the booted deployment (the merge source) is found from",
	"--image":                "fetched manifest digest that is deployed",
	"--stateroot":            "stateroot deployed into",
	"--download-only":        "staged but not applied at shutdown",
	"--karg":                 "kernel arguments added if missing",
	"--no-arm":               "bootc-finalize.service is not started",
	"--allow-failed":         "an image that failed to boot here before is staged instead of refused",
	"--result":               "JSON outcome written to this file",
	"--reboot-required-file": "where the reboot-required notice is written",
	"--lock-wait":            "how long another operation's lock is waited for",
}

func TestEveryFlagDoesSomething(t *testing.T) {
	for _, p := range cli.CheckFlagTable(name, func() any { return &CLI{} }, stageFlags) {
		t.Error(p)
	}
}
