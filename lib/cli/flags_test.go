package cli

import (
	"bytes"
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// tool is a grammar with what the flag rules deal with: an unsupported flag, a command that
// refuses flags it inherits, a verb that passes its arguments on, required arguments.
type tool struct {
	Root
	Wait time.Duration `help:"How long to wait." default:"1s"`

	Go   goCmd   `cmd:"" help:"Go somewhere."`
	Lint lintCmd `cmd:"" help:"Check." unsupportedflags:"sysroot,wait"`
	Pass passCmd `cmd:"" passthrough:"" help:"Hand on." unsupportedflags:"sysroot"`
}

type goCmd struct {
	Where string `arg:"" help:"Where to."`
	Fast  bool   `help:"Quickly."`
	Mode  string `help:"How." enum:"soft,hard," default:"" unsupported:"modes are not implemented"`
	Count int    `help:"How often." required:""`
}

type lintCmd struct {
	Strict bool `help:"Be strict."`
}

type passCmd struct {
	Args []string `arg:"" optional:"" passthrough:"all"`
}

func runTool(t *testing.T, args ...string) (code int, ran bool, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run("tool", "A tool.", &tool{}, args, &out, &errOut, func(context.Context, *kong.Context) error {
		ran = true
		return nil
	})
	return code, ran, out.String(), errOut.String()
}

func TestUnsupportedFlagsRefused(t *testing.T) {
	cases := []struct {
		args []string
		want string // "" when the command runs
	}{
		{[]string{"go", "x", "--count=1"}, ""},
		{[]string{"go", "x", "--count=1", "--mode=soft"}, "tool go: error: not supported: --mode (modes are not implemented)\n"},
		{[]string{"--sysroot=/", "go", "x", "--count=1"}, ""},
		{[]string{"--sysroot=/", "lint"}, "tool lint: error: not supported: --sysroot (tool lint does not use it)\n"},
		{[]string{"lint", "--wait=2s"}, "tool lint: error: not supported: --wait (tool lint does not use it)\n"},
		{[]string{"lint", "--strict"}, ""},
		// After the verb, the arguments are the step tool's.
		{[]string{"pass", "--sysroot=/"}, ""},
		{[]string{"--sysroot=/", "pass"}, "tool pass: error: not supported: --sysroot (tool pass does not use it)\n"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, ran, _, stderr := runTool(t, c.args...)
			if c.want == "" {
				if code != 0 || !ran || stderr != "" {
					t.Errorf("exit %d, ran %v, stderr %q: want the command to run", code, ran, stderr)
				}
				return
			}
			if code != ExitUsage || ran || stderr != c.want {
				t.Errorf("exit %d, ran %v, stderr %q: want exit %d, %q", code, ran, stderr, ExitUsage, c.want)
			}
		})
	}
}

// TestEnvironmentNotRefused: the environment speaks to every tool at once, so a value from it is
// not a flag the user gave to a command that does not use it.
func TestEnvironmentNotRefused(t *testing.T) {
	t.Setenv("BOOTC_SYSROOT", "/elsewhere")
	if code, ran, _, stderr := runTool(t, "lint"); code != 0 || !ran {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestErrorsNameTheCommand(t *testing.T) {
	for args, want := range map[string]string{
		"go --count=1":      "tool go: error: expected \"<where>\"\n",
		"go x --count=1 y":  "tool go: error: unexpected argument y\n",
		"lint --bogus":      "tool lint: error: unknown flag --bogus\n",
		"frobnicate":        "tool: error: unexpected argument frobnicate\n",
		"go x --count=nope": "tool go: error: --count: expected a valid 64 bit int but got \"nope\"\n",
	} {
		code, _, _, stderr := runTool(t, strings.Fields(args)...)
		if code != ExitUsage || stderr != want {
			t.Errorf("%s: exit %d, stderr %q, want %q", args, code, stderr, want)
		}
	}
	var errOut bytes.Buffer
	code := Run("tool", "", &tool{}, []string{"lint"}, &bytes.Buffer{}, &errOut, func(context.Context, *kong.Context) error {
		return context.Canceled
	})
	if code != ExitFailure || errOut.String() != "tool lint: error: context canceled\n" {
		t.Errorf("failed command: exit %d, stderr %q", code, errOut.String())
	}
}

func TestUnsupportedInHelp(t *testing.T) {
	code, _, out, _ := runTool(t, "go", "--help")
	if code != 0 || !strings.Contains(out, "How. Not supported by this build.") {
		t.Errorf("exit %d, help:\n%s", code, out)
	}
	if strings.Count(out, "Not supported") != 1 {
		t.Errorf("help marks other flags unsupported:\n%s", out)
	}
}

func TestFlagUses(t *testing.T) {
	uses, err := FlagUses(&tool{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]FlagUse{}
	for _, u := range uses {
		got[u.Key] = u
	}
	want := map[string]FlagUse{
		"go --sysroot":   {Flag: "sysroot", Args: []string{"--sysroot=/", "go", "/", "--count=1"}},
		"go --run-dir":   {Flag: "run-dir", Args: []string{"--run-dir=/", "go", "/", "--count=1"}},
		"go --wait":      {Flag: "wait", Args: []string{"--wait=1s", "go", "/", "--count=1"}},
		"go --fast":      {Flag: "fast", Args: []string{"go", "--fast", "/", "--count=1"}},
		"go --mode":      {Flag: "mode", Args: []string{"go", "--mode=soft", "/", "--count=1"}, Refused: true},
		"go --count":     {Flag: "count", Args: []string{"go", "/", "--count=1"}},
		"lint --sysroot": {Flag: "sysroot", Args: []string{"--sysroot=/", "lint"}, Refused: true},
		"lint --run-dir": {Flag: "run-dir", Args: []string{"--run-dir=/", "lint"}},
		"lint --wait":    {Flag: "wait", Args: []string{"--wait=1s", "lint"}, Refused: true},
		"lint --strict":  {Flag: "strict", Args: []string{"lint", "--strict"}},
		"pass --sysroot": {Flag: "sysroot", Args: []string{"--sysroot=/", "pass"}, Refused: true},
		"pass --run-dir": {Flag: "run-dir", Args: []string{"--run-dir=/", "pass"}},
		"pass --wait":    {Flag: "wait", Args: []string{"--wait=1s", "pass"}},
	}
	for k, w := range want {
		w.Key = k
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s: %+v, want %+v", k, got[k], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d uses, want %d: %v", len(got), len(want), uses)
	}
	// A tool without subcommands: its flags are keyed by name alone.
	uses, err = FlagUses(&grammar{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range uses {
		keys = append(keys, u.Key)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"--run-dir", "--sysroot"}) {
		t.Errorf("keys %v", keys)
	}
}

func TestCheckFlagTable(t *testing.T) {
	complete := map[string]string{
		"go --sysroot": "root", "go --run-dir": "run", "go --wait": "wait", "go --fast": "fast",
		"go --mode": NotSupported, "go --count": "count",
		"lint --sysroot": NotSupported, "lint --run-dir": "run", "lint --wait": NotSupported, "lint --strict": "strict",
		"pass --sysroot": NotSupported, "pass --run-dir": "env", "pass --wait": "env",
	}
	newTool := func() any { return &tool{} }
	if p := CheckFlagTable("tool", newTool, complete); len(p) != 0 {
		t.Errorf("complete table: %v", p)
	}
	change := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range complete {
			m[kk] = vv
		}
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for name, c := range map[string]struct {
		table map[string]string
		want  []string
	}{
		"missing entry": {change("go --fast", ""), []string{`"go --fast" has no entry`}},
		"stale entry":   {change("go --slow", "slow"), []string{`"go --slow" is in the table but no command has that flag`}},
		"accepted flag said refused": {change("lint --strict", NotSupported), []string{
			`"lint --strict" ([lint --strict]): the command ran`,
			`"lint --strict": the table says "not supported" but the grammar accepts it`}},
		"refused flag said working": {change("go --mode", "soft or hard"), []string{
			`"go --mode": the table says "soft or hard" but the grammar refuses it`}},
		"empty entry": {change("go --count", " "), []string{`"go --count": empty entry`}},
	} {
		p := CheckFlagTable("tool", newTool, c.table)
		if len(p) != len(c.want) {
			t.Errorf("%s: problems %q, want %q", name, p, c.want)
			continue
		}
		for i := range p {
			if !strings.HasPrefix(p[i], c.want[i]) {
				t.Errorf("%s: problem %q, want %q", name, p[i], c.want[i])
			}
		}
	}
}

func TestDisplayEnv(t *testing.T) {
	env := []string{"A=1", DisplayNameEnv + "=bootc old", "B=2"}
	if got := DisplayEnv(env, "bootc status"); !slices.Equal(got, []string{"A=1", "B=2", DisplayNameEnv + "=bootc status"}) {
		t.Errorf("set: %q", got)
	}
	if got := DisplayEnv(env, ""); !slices.Equal(got, []string{"A=1", "B=2"}) {
		t.Errorf("removed: %q", got)
	}
	if env[1] != DisplayNameEnv+"=bootc old" {
		t.Errorf("DisplayEnv changed its input: %q", env)
	}
}
