package main

import (
	"testing"

	"gobootc.dev/lib/cli"
)

// healthFlags says what each flag of each command changes, or that the command refuses it; a
// flag added to the grammar fails the test until it has an entry here.
var healthFlags = map[string]string{
	"check --sysroot": "physical root: the booted deployment's record, and its state where the health record is kept",
	"check --run-dir": "per-boot state directory: the booted marker, and where health.json is written",
	"check --cmdline": "command line the booted deployment is found from",
	"check --root":    "root whose checks, hooks and greenboot.conf are read, and whose run/motd.d gets the login message",
	"check --timeout": "time each check or hook runs before it is killed with its processes",

	"list --sysroot": cli.NotSupported,
	"list --run-dir": cli.NotSupported,
	"list --cmdline": cli.NotSupported,
	"list --root":    "root whose checks and hooks are listed",

	"persist --sysroot": "physical root whose deployment state receives the record",
	"persist --run-dir": "per-boot state directory the record is read from",
	"persist --cmdline": cli.NotSupported,
}

func TestEveryFlagDoesSomething(t *testing.T) {
	for _, p := range cli.CheckFlagTable("bootc-health", func() any { return &CLI{} }, healthFlags) {
		t.Error(p)
	}
}
