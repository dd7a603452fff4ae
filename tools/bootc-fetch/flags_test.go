package main

import (
	"testing"

	"gobootc.dev/lib/cli"
)

// fetchFlags says what each flag changes; a flag added to the grammar fails the test until it
// has an entry here (or is refused, and marked cli.NotSupported).
var fetchFlags = map[string]string{
	"--sysroot":                     "physical root whose store receives the image",
	"--run-dir":                     "per-boot state directory: the booted deployment's record",
	"--cmdline":                     "command line the booted deployment (and its tracked image) is found from",
	"--transport":                   "how IMAGE is read: registry, oci, …",
	"--tag":                         "the tracked image with this tag instead",
	"--check":                       "manifest and config only; the update is remembered for status",
	"--quiet":                       "no progress on stderr",
	"--progress-fd":                 "JSON Lines progress events written to this descriptor",
	"--result":                      "JSON summary written to this file",
	"--enforce-container-sigpolicy": "the image must verify with policy.json; an accept-anything policy is refused",
	"--authfile":                    "pull secret used instead of the search",
	"--registries-conf":             "registries.conf used instead of the system one",
	"--registries.d":                "registries.d used for signature lookaside",
	"--signature-policy":            "policy.json used instead of the system one",
	"--lock-wait":                   "how long another operation's lock is waited for",
}

func TestEveryFlagDoesSomething(t *testing.T) {
	for _, p := range cli.CheckFlagTable("bootc-fetch", func() any { return &CLI{} }, fetchFlags) {
		t.Error(p)
	}
}
