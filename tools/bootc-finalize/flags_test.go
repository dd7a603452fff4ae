package main

import (
	"testing"

	"gobootc.dev/lib/cli"
)

// finalizeFlags says what each flag changes; a flag added to the grammar fails the test until it
// has an entry here (or is refused, and marked cli.NotSupported).
var finalizeFlags = map[string]string{
	"--sysroot":        "physical root finalized",
	"--run-dir":        "per-boot state directory: the staged record",
	"--cmdline":        "command line the booted deployment is found from (finalize, --cleanup)",
	"--report-failure": "reports a previous finalize's failure instead of finalizing",
	"--acknowledge":    "forgets a previous finalize's failure instead of finalizing",
	"--cleanup":        "removes what the last finalize left unneeded instead of finalizing",
	"--lock-wait":      "how long another operation's lock is waited for (finalize, --cleanup)",
}

func TestEveryFlagDoesSomething(t *testing.T) {
	for _, p := range cli.CheckFlagTable("bootc-finalize", func() any { return &CLI{} }, finalizeFlags) {
		t.Error(p)
	}
}
