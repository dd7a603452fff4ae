// Package failpoint lets crash tests stop a writer dead at a named step, as a power cut there
// would: BOOTC_FAILPOINT=<step> makes the process exit at once when it reaches that step, and
// BOOTC_FAILPOINT_TRACE=<file> records every step reached, so a test can learn the steps from a
// clean run and then crash at each in turn.
package failpoint

import (
	"fmt"
	"os"
)

// Env names the step to crash at; Env+"_TRACE" names the trace file.
const Env = "BOOTC_FAILPOINT"

// ExitCode is what a process stopped at a failpoint exits with.
const ExitCode = 99

// Hit marks reaching step: it is traced, and the process exits without any cleanup when step is
// the armed failpoint.
func Hit(step string) {
	if path := os.Getenv(Env + "_TRACE"); path != "" {
		if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintln(f, step)
			f.Close()
		}
	}
	if want := os.Getenv(Env); want != "" && want == step {
		fmt.Fprintf(os.Stderr, "failpoint %s: stopping here\n", step)
		os.Exit(ExitCode)
	}
}

// Prefixed returns a hook for a library's own step names ("bootloader:switch" …).
func Prefixed(prefix string) func(step string) error {
	return func(step string) error {
		Hit(prefix + ":" + step)
		return nil
	}
}
