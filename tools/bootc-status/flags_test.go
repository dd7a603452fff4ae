package main

import (
	"testing"

	"gobootc.dev/lib/cli"
)

// statusFlags says what each flag changes; a flag added to the grammar fails the test until it
// has an entry here (or is refused, and marked cli.NotSupported).
var statusFlags = map[string]string{
	"--sysroot":        "physical root whose deployments are shown",
	"--run-dir":        "per-boot state directory: booted and staged records",
	"--cmdline":        "command line the booted deployment is found from",
	"--format":         "humanreadable, yaml or json output",
	"--json":           "JSON output (--format=json)",
	"--format-version": "refused unless 0 or 1 (both are v1)",
	"--booted":         "only the booted deployment",
	"--verbose":        "more detail in the human-readable output",
}

func TestEveryFlagDoesSomething(t *testing.T) {
	for _, p := range cli.CheckFlagTable("bootc-status", func() any { return &CLI{} }, statusFlags) {
		t.Error(p)
	}
}

// Upstream's status flags are all here.
func TestUpstreamSurface(t *testing.T) {
	missing, err := cli.MissingFlags(&CLI{}, map[string][]string{"": {"format", "json", "format-version", "booted", "verbose"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range missing {
		t.Errorf("upstream's %s is not in the grammar", key)
	}
}
