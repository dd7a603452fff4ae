// Package cli holds the conventions every bootc command shares: the flags that say which root
// to work on, argument parsing, and how errors reach the user.
package cli

import (
	"context"
	"errors"
	"fmt"
	"gobootc.dev/lib/lock"
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

// Main parses args into grammar and calls run; it never returns. Errors are printed as one
// "name: error: …" line (further lines only for lists the message itself carries).
func Main(name, description string, grammar any, run func(ctx context.Context, k *kong.Context) error) {
	os.Exit(Run(name, description, grammar, os.Args[1:], os.Stdout, os.Stderr, run))
}

// Run is Main without the exit, for tests.
func Run(name, description string, grammar any, args []string, stdout, stderr io.Writer, run func(ctx context.Context, k *kong.Context) error) int {
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
	k, err := parser.Parse(args)
	if exitCode >= 0 { // --help and friends exit from inside Parse
		return exitCode
	}
	if err != nil {
		Report(stderr, name, err)
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, k); err != nil {
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

// NotBuilt is the whole main of a step tool this build does not contain yet: it fails loudly
// rather than succeed without doing its step.
func NotBuilt(name string) {
	fmt.Fprintf(os.Stderr, "%s: error: this step is not available in this build\n", name)
	os.Exit(ExitFailure)
}

// DefaultLibexec is where `make install` puts the step tools.
const DefaultLibexec = "/usr/libexec/bootc"

// FindTool locates a step tool: $BOOTC_LIBEXEC_DIR, then next to the running binary (a build
// tree or a custom install), then the install location, then $PATH.
func FindTool(name string) (string, error) {
	var dirs []string
	if d := os.Getenv("BOOTC_LIBEXEC_DIR"); d != "" {
		dirs = append(dirs, d)
	}
	if self, err := os.Executable(); err == nil {
		dirs = append(dirs, filepath.Dir(self))
	}
	dirs = append(dirs, DefaultLibexec)
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("step tool %s not found (looked in $BOOTC_LIBEXEC_DIR, next to this program, %s and $PATH)", name, DefaultLibexec)
}

// StepCommand prepares a step tool found with FindTool, with this process's environment; the
// caller sets its output, extra descriptors and environment, then runs it with RunStep.
func StepCommand(ctx context.Context, tool string, args ...string) (*exec.Cmd, error) {
	path, err := FindTool(tool)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = os.Environ()
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
