// Package failpoint lets crash tests stop a writer at a named step, as a power cut there would.
// It is a supported knob, read from the environment of the process that writes:
//
//	BOOTC_FAILPOINT=<step>         the step to stop at ("finalize:entries", "bootloader:switch" …)
//	BOOTC_FAILPOINT_ACTION=exit    exit at once, without any cleanup (the default)
//	BOOTC_FAILPOINT_ACTION=block   stay stopped at the step until killed, so that something outside
//	                               (a VM test cutting the power) acts at exactly that point
//	BOOTC_FAILPOINT_NOTIFY=<path>  when the step is reached, write a line naming it to path (a
//	                               file, a FIFO, a virtio-serial port) before the action
//	BOOTC_FAILPOINT_TRACE=<path>   append every step reached to path, so a test can learn the
//	                               steps from a clean run and then stop at each in turn
package failpoint

import (
	"fmt"
	"os"
	"time"
)

// The environment variables; see the package documentation.
const (
	Env       = "BOOTC_FAILPOINT"
	EnvAction = Env + "_ACTION"
	EnvNotify = Env + "_NOTIFY"
	EnvTrace  = Env + "_TRACE"
)

// The actions EnvAction selects.
const (
	ActionExit  = "exit"
	ActionBlock = "block"
)

// ExitCode is what a process stopped at a failpoint exits with.
const ExitCode = 99

// Hit marks reaching step: it is traced, and when step is the armed failpoint the process is
// stopped there, without any cleanup, as EnvAction says.
func Hit(step string) {
	if path := os.Getenv(EnvTrace); path != "" {
		appendLine(path, step)
	}
	if want := os.Getenv(Env); want == "" || want != step {
		return
	}
	if path := os.Getenv(EnvNotify); path != "" {
		if err := appendLine(path, step); err != nil {
			fmt.Fprintf(os.Stderr, "failpoint %s: telling %s: %v\n", step, path, err)
		}
	}
	switch action := os.Getenv(EnvAction); action {
	case "", ActionExit:
		fmt.Fprintf(os.Stderr, "failpoint %s: stopping here\n", step)
		os.Exit(ExitCode)
	case ActionBlock:
		fmt.Fprintf(os.Stderr, "failpoint %s: blocking here until killed\n", step)
		// A sleeping timer, unlike an empty select, never trips the runtime's deadlock check.
		for {
			time.Sleep(time.Hour)
		}
	default:
		// A misspelt action must not let the writer run on past the step it names.
		fmt.Fprintf(os.Stderr, "failpoint %s: unknown %s=%q (want %s or %s); stopping here\n",
			step, EnvAction, action, ActionExit, ActionBlock)
		os.Exit(ExitCode)
	}
}

// appendLine writes one line to path, creating a plain file if nothing is there. A device or
// FIFO gets the line in a single write, so the reader never sees half a step name.
func appendLine(path, line string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write([]byte(line + "\n"))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Prefixed returns a hook for a library's own step names ("bootloader:switch" …).
func Prefixed(prefix string) func(step string) error {
	return func(step string) error {
		Hit(prefix + ":" + step)
		return nil
	}
}
