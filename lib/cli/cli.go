// Package cli holds the conventions every bootc command shares: the flags that say which root
// to work on, argument parsing, and how errors reach the user.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
	"golang.org/x/term"

	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
)

// Root selects the physical root and run directory. The environment variables let the `bootc`
// front and test harnesses point every step tool at a directory without rewriting arguments.
type Root struct {
	Sysroot string `help:"Physical root to work on." default:"/sysroot" env:"BOOTC_SYSROOT" placeholder:"DIR"`
	RunDir  string `help:"Per-boot state directory." default:"/run/bootc" env:"BOOTC_RUN_DIR" hidden:""`
}

// Layout returns the paths of the selected root.
func (r Root) Layout() layout.Root { return layout.New(r.Sysroot, r.RunDir) }

// ExitError carries an exit code other than 1 through Run's error return. Reported says the user
// has been told already (by a step tool): Run then prints nothing more unless a caller wrapped
// the error with context of its own.
type ExitError struct {
	Code     int
	Err      error
	Reported bool
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit codes: 1 for a failed operation, 2 for a bad command line (as most Unix tools do).
const (
	ExitFailure = 1
	ExitUsage   = 2
)

// DisplayNameEnv carries the name a step tool shows in its help and errors when the `bootc`
// front runs it for a verb ("bootc status"): the user typed the verb, not the tool's file name.
// It is meant for that one child: StepCommand drops it, so tools a step runs use their own names.
const DisplayNameEnv = "BOOTC_DISPLAY_NAME"

// Main parses args into grammar and calls run; it never returns. Errors are printed as one
// "name verb: error: …" line (further lines only for lists the message itself carries).
func Main(name, description string, grammar any, run func(ctx context.Context, k *kong.Context) error) {
	if d := os.Getenv(DisplayNameEnv); d != "" {
		name = d
	}
	os.Exit(Run(name, description, grammar, os.Args[1:], os.Stdout, os.Stderr, run))
}

// DisplayEnv returns env with the display name set to name, or removed when name is empty.
func DisplayEnv(env []string, name string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, DisplayNameEnv+"=") {
			out = append(out, kv)
		}
	}
	if name != "" {
		out = append(out, DisplayNameEnv+"="+name)
	}
	return out
}

// Run is Main without the exit, for tests.
func Run(name, description string, grammar any, args []string, stdout, stderr io.Writer, run func(ctx context.Context, k *kong.Context) error) int {
	if versionArgs(args) {
		fmt.Fprintf(stdout, "%s %s\n", name, Version)
		return 0
	}
	exitCode := -1
	parser, err := kong.New(grammar,
		kong.Name(name),
		kong.Description(description),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exitCode = code }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: building the command line: %v\n", name, err)
		return ExitFailure
	}
	markUnsupported(parser.Model.Node)
	k, err := parser.Parse(args)
	if exitCode >= 0 { // --help and friends exit from inside Parse
		return exitCode
	}
	if err != nil {
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil {
			name = commandName(name, pe.Context)
		}
		Report(stderr, name, err)
		return ExitUsage
	}
	// Errors name the command the user typed ("bootc switch"), not only the program.
	name = commandName(name, k)
	if err := refuseUnsupported(k, name); err != nil {
		Report(stderr, name, err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, k); err != nil {
		// kong's Context.Run joins the command's error with its hooks' even when there is one.
		if j, ok := err.(interface{ Unwrap() []error }); ok && len(j.Unwrap()) == 1 {
			err = j.Unwrap()[0]
		}
		var ee *ExitError
		if !errors.As(err, &ee) || !ee.Reported || err != error(ee) {
			Report(stderr, name, err)
		}
		if ee != nil {
			return ee.Code
		}
		return ExitFailure
	}
	return 0
}

// Report prints an error for a person. Terminal control sequences are removed unless stderr is
// a terminal, so logs and management agents parsing the text get plain lines.
func Report(w io.Writer, name string, err error) {
	msg := err.Error()
	if f, ok := w.(*os.File); !ok || !term.IsTerminal(int(f.Fd())) {
		msg = stripControl(msg)
	}
	fmt.Fprintf(w, "%s: error: %s\n", name, msg)
}

// stripControl drops ANSI escape sequences and control characters other than newline and tab.
func stripControl(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0x1b:
			// Skip a CSI sequence (ESC [ params final) or a lone two-byte escape.
			if i+1 < len(s) && s[i+1] == '[' {
				i += 2
				for i < len(s) && (s[i] < 0x40 || s[i] > 0x7e) {
					i++
				}
			} else {
				i++
			}
		case c == '\n' || c == '\t' || c >= 0x20 && c != 0x7f:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// IsTerminal reports whether w is a terminal (for default output formats and progress bars).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// DefaultLibexec is where `make install` puts the step tools.
const DefaultLibexec = "/usr/libexec/bootc"

// FindTool locates a step tool: in $BOOTC_LIBEXEC_DIR alone when it is set (so that what a test
// or a custom install points at is what runs, whatever else this host has installed); otherwise
// next to the running binary (a build tree or a custom install), then the install location, then
// $PATH.
func FindTool(name string) (string, error) {
	if d := os.Getenv("BOOTC_LIBEXEC_DIR"); d != "" {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
		return "", fmt.Errorf("step tool %s not found in $BOOTC_LIBEXEC_DIR (%s)", name, d)
	}
	var dirs []string
	if self, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	dirs = append(dirs, DefaultLibexec)
	for _, d := range dirs {
		if p := filepath.Join(d, name); isExecutable(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("step tool %s not found (looked next to this program, in %s and $PATH)", name, DefaultLibexec)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// StepCommand prepares a step tool found with FindTool, with this process's environment; the
// caller sets its output, extra descriptors and environment, then runs it with RunStep.
func StepCommand(ctx context.Context, tool string, args ...string) (*exec.Cmd, error) {
	path, err := FindTool(tool)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	// The step speaks under its own name unless the caller gives it the user's verb.
	cmd.Env = DisplayEnv(os.Environ(), "")
	return cmd, nil
}

// RunStep runs a step tool sharing the caller's writer lock (handed down after any extra
// descriptors the caller set). A tool that fails has told the user why already, so its error is a
// Reported ExitError carrying its status.
func RunStep(cmd *exec.Cmd, l *lock.Lock) error {
	tool := filepath.Base(cmd.Path)
	l.Handoff(cmd)
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &ExitError{Code: ee.ExitCode(), Err: fmt.Errorf("%s exited with status %d", tool, ee.ExitCode()), Reported: true}
		}
		return fmt.Errorf("running %s: %w", tool, err)
	}
	return nil
}
