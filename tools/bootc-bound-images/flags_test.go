package main

import (
	"testing"

	"gobootc.dev/lib/cli"
)

// boundFlags says what each flag of each command changes, or that the command refuses it; a flag
// added to the grammar fails the test until it has an entry here.
var boundFlags = map[string]string{
	"sync --sysroot":         "physical root whose bootc storage receives the images",
	"sync --run-dir":         cli.NotSupported,
	"sync --podman":          "podman program serving the storage",
	"sync --cmdline":         cli.NotSupported,
	"sync --lock-wait":       "how long another operation's lock is waited for",
	"sync --deployment":      "deployment whose declarations are read",
	"sync --root":            "root filesystem whose declarations are read",
	"sync --from-storage":    "images copied from this storage instead of pulled",
	"sync --authfile":        "pull secret used instead of the search",
	"sync --registries-conf": "registries.conf for the pulls",

	"gc --sysroot":   "physical root whose bootc storage is collected",
	"gc --run-dir":   "per-boot state directory: the staged deployment is kept",
	"gc --podman":    "podman program serving the storage",
	"gc --cmdline":   "command line the booted deployment (kept) is found from",
	"gc --lock-wait": "how long another operation's lock is waited for",
	"gc --dry-run":   "only says what would be removed",

	"list --sysroot":   "physical root whose images are listed",
	"list --run-dir":   "per-boot state directory: the booted deployment's record",
	"list --podman":    cli.NotSupported,
	"list --cmdline":   "command line the booted deployment is found from",
	"list --lock-wait": cli.NotSupported,
	"list --type":      "which images: all, logical or host",
	"list --format":    "table or JSON",
	"list --root":      "root filesystem whose declarations are listed",
}

func TestEveryFlagDoesSomething(t *testing.T) {
	for _, p := range cli.CheckFlagTable(name, func() any { return &CLI{} }, boundFlags) {
		t.Error(p)
	}
}
