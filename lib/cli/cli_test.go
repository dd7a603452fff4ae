package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

func TestStripControl(t *testing.T) {
	cases := map[string]string{
		"plain":                   "plain",
		"\x1b[31mred\x1b[0m text": "red text",
		"bell\a and del\x7f":      "bell and del",
		"two\nlines\tand tab":     "two\nlines\tand tab",
		"osc-ish \x1bX":           "osc-ish ",
		"cut at end \x1b[":        "cut at end ",
		"nul\x00 byte":            "nul byte",
	}
	for in, want := range cases {
		if got := stripControl(in); got != want {
			t.Errorf("stripControl(%q) = %q, want %q", in, got, want)
		}
	}
}

type grammar struct {
	Root
	Name string `arg:"" optional:""`
}

func TestRunExitCodes(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		runErr   error
		wantCode int
		wantErr  string
	}{
		{"ok", []string{"x"}, nil, 0, ""},
		{"usage", []string{"--nope"}, nil, ExitUsage, "demo: error: unknown flag --nope"},
		{"failure", nil, errors.New("doing it: \x1b[1mbroken\x1b[0m"), ExitFailure, "demo: error: doing it: broken\n"},
		{"exit code", nil, &ExitError{Code: 7, Err: errors.New("seven")}, 7, "demo: error: seven\n"},
		{"help", []string{"--help"}, nil, 0, ""},
		// A step tool already said why: only its status is passed on.
		{"reported", nil, &ExitError{Code: 3, Err: errors.New("tool exited with status 3"), Reported: true}, 3, ""},
		// With a caller's context added, the line is worth printing.
		{"reported and wrapped", nil, fmt.Errorf("storing images: %w", &ExitError{Code: 3, Err: errors.New("tool exited with status 3"), Reported: true}), 3, "demo: error: storing images: tool exited with status 3\n"},
		// kong's Context.Run returns the command's error joined with its hooks' (none here).
		{"reported through kong", nil, errors.Join(&ExitError{Code: 3, Err: errors.New("tool exited with status 3"), Reported: true}), 3, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run("demo", "A demo.", &grammar{}, c.args, &out, &errOut, func(context.Context, *kong.Context) error { return c.runErr })
			if code != c.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", code, c.wantCode, errOut.String())
			}
			if !strings.Contains(errOut.String(), c.wantErr) {
				t.Errorf("stderr %q lacks %q", errOut.String(), c.wantErr)
			}
			if c.wantErr == "" && errOut.Len() != 0 {
				t.Errorf("a reported error was printed again: %q", errOut.String())
			}
			if strings.Count(errOut.String(), "\n") > 1 {
				t.Errorf("error is more than one line: %q", errOut.String())
			}
		})
	}
}

// --version prints one line, "NAME VERSION", and runs nothing; with anything else on the
// command line it is an unknown flag like any other.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-V"}} {
		var out, errOut bytes.Buffer
		ran := false
		code := Run("demo", "A demo.", &grammar{}, args, &out, &errOut, func(context.Context, *kong.Context) error { ran = true; return nil })
		if code != 0 || ran || out.String() != "demo "+Version+"\n" || errOut.Len() != 0 {
			t.Errorf("%v: exit %d, ran %v, stdout %q, stderr %q", args, code, ran, out.String(), errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := Run("demo", "A demo.", &grammar{}, []string{"x", "--version"}, &out, &errOut, func(context.Context, *kong.Context) error { return nil }); code != ExitUsage {
		t.Errorf("x --version: exit %d, want %d", code, ExitUsage)
	}
}

func TestRootFromEnvironment(t *testing.T) {
	t.Setenv("BOOTC_SYSROOT", "/tmp/some-root")
	g := &grammar{}
	Run("demo", "", g, nil, &bytes.Buffer{}, &bytes.Buffer{}, func(context.Context, *kong.Context) error { return nil })
	if g.Sysroot != "/tmp/some-root" || g.Layout().Bootc() != "/tmp/some-root/bootc" {
		t.Errorf("sysroot %q, layout %q", g.Sysroot, g.Layout().Bootc())
	}
}
