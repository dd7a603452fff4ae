package main

import (
	"testing"

	"gobootc.dev/lib/cli"
)

// kargsFlags says what each flag changes; a flag added to the grammar fails the test until it
// has an entry here (or is refused, and marked cli.NotSupported).
var kargsFlags = map[string]string{
	"--new-root":     "root whose kargs.d the result follows",
	"--old-root":     "root whose kargs.d arguments are dropped when the new image drops them",
	"--current":      "the current command line",
	"--current-file": "file (or stdin) the current command line is read from",
	"--arch":         "architecture kargs.d entries are selected for",
}

func TestEveryFlagDoesSomething(t *testing.T) {
	for _, p := range cli.CheckFlagTable("bootc-kargs", func() any { return &CLI{} }, kargsFlags) {
		t.Error(p)
	}
}
