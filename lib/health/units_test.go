package health

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/record"
)

// systemctlScript stands in for systemctl on $PATH: `is-active UNIT…` prints each unit's state,
// line N of $FAKE_SYSTEMD/<unit> on the Nth call (its last line after that; "inactive" without
// a file), and exits 0 only when all are active, as systemctl does. Each call's units are
// appended to $FAKE_SYSTEMD/calls.
const systemctlScript = `#!/bin/bash
if [ -e "$FAKE_SYSTEMD/broken" ]; then echo "Failed to connect to bus: No such file or directory" >&2; exit 1; fi
[ "$1" = is-active ] || { echo "unexpected arguments: $*" >&2; exit 1; }
shift
echo "$*" >> "$FAKE_SYSTEMD/calls"
n=$(wc -l < "$FAKE_SYSTEMD/calls")
rc=0
for u in "$@"; do
	s=inactive
	if [ -f "$FAKE_SYSTEMD/$u" ]; then
		s=$(sed -n "${n}p" "$FAKE_SYSTEMD/$u")
		[ -n "$s" ] || s=$(tail -n 1 "$FAKE_SYSTEMD/$u")
	fi
	echo "$s"
	[ "$s" = active ] || rc=3
done
exit $rc
`

// fakeSystemctl puts systemctlScript first on $PATH with the units' states (one line per call,
// see systemctlScript) and returns its state directory.
func fakeSystemctl(t *testing.T, states map[string]string) string {
	t.Helper()
	bin, state := t.TempDir(), t.TempDir()
	write(t, bin, "systemctl", 0o755, systemctlScript)
	for u, s := range states {
		write(t, state, u, 0o644, s+"\n")
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("FAKE_SYSTEMD", state)
	return state
}

func calls(t *testing.T, state string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(state, "calls"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestUnits(t *testing.T) {
	const list = "usr/lib/bootc/health/units.d/50-app.toml"
	for _, tc := range []struct {
		name    string
		file    string
		states  map[string]string
		verdict record.Verdict
		outcome record.CheckOutcome
		reason  string
		lines   []string
		calls   int
	}{
		{
			name:    "active",
			file:    `required = ["app.service", "db.service"]`,
			states:  map[string]string{"app.service": "active", "db.service": "reloading"},
			verdict: record.Green, outcome: record.CheckPassed, calls: 1,
		},
		{
			name:    "starting, then active",
			file:    `required = ["app.service"]`,
			states:  map[string]string{"app.service": "inactive\nactivating\nactive"},
			verdict: record.Green, outcome: record.CheckPassed, calls: 3,
		},
		{
			name:    "failed",
			file:    "required = [\"app.service\", \"db.service\"]\ntimeout = \"1h\"",
			states:  map[string]string{"app.service": "activating", "db.service": "failed"},
			verdict: record.Red, outcome: record.CheckFailed, reason: "db.service failed",
			lines: []string{"app.service: activating", "db.service: failed"}, calls: 1,
		},
		{
			name:    "never active",
			file:    "required = [\"app.service\"]\ntimeout = \"300ms\"",
			states:  map[string]string{"app.service": "activating"},
			verdict: record.Red, outcome: record.CheckTimedOut, reason: "not active after 300ms: app.service is activating",
			lines: []string{"app.service: activating"},
		},
		{
			name:    "wanted only",
			file:    `wanted = ["metrics.service"]`,
			states:  map[string]string{"metrics.service": "failed"},
			verdict: record.Green, outcome: record.CheckFailed, reason: "metrics.service failed",
			lines: []string{"metrics.service: failed"}, calls: 1,
		},
		{
			name:    "unknown key",
			file:    `requried = ["app.service"]`,
			verdict: record.Red, outcome: record.CheckFailed, reason: `units list: unknown key "requried" (want required, wanted, timeout)`,
		},
		{
			name:    "not a unit name",
			file:    `required = ["--global"]`,
			verdict: record.Red, outcome: record.CheckFailed, reason: `units list: "--global" is not a unit name`,
		},
		{
			name:    "bad timeout",
			file:    "required = [\"a.service\"]\ntimeout = \"soon\"",
			verdict: record.Red, outcome: record.CheckFailed, reason: `units list: timeout "soon": want a positive duration such as "10m"`,
		},
		{
			name:    "not TOML",
			file:    `required = app.service`,
			verdict: record.Red, outcome: record.CheckFailed, reason: "parsing units list: ",
		},
		{
			name:    "systemd unreachable",
			file:    `required = ["app.service"]`,
			states:  map[string]string{"broken": ""},
			verdict: record.Red, outcome: record.CheckFailed,
			reason: "asking systemd for the state of app.service: Failed to connect to bus: No such file or directory",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, _, opts, log := newRoot(t)
			state := fakeSystemctl(t, tc.states)
			write(t, root, list, 0o644, tc.file+"\n")
			start := time.Now()
			_, h := assess(t, root, opts)
			if h.Verdict != tc.verdict || len(h.Checks) != 1 {
				t.Fatalf("verdict %s, checks %+v", h.Verdict, h.Checks)
			}
			c := h.Checks[0]
			if c.Outcome != tc.outcome || c.Type != "units" || c.Path != "/"+list {
				t.Errorf("check %+v", c)
			}
			if got := Reason(c); tc.reason != "" && !strings.HasPrefix(got, tc.reason) {
				t.Errorf("reason %q, want %q", got, tc.reason)
			}
			if !slices.Equal(c.LastLines, tc.lines) {
				t.Errorf("last lines %q, want %q", c.LastLines, tc.lines)
			}
			if tc.calls > 0 && len(calls(t, state)) != tc.calls {
				t.Errorf("systemctl called %d times, want %d: %q", len(calls(t, state)), tc.calls, calls(t, state))
			}
			if tc.outcome == record.CheckTimedOut && time.Since(start) > 10*time.Second {
				t.Errorf("the 300ms timeout took %v", time.Since(start))
			}
			if tc.outcome != record.CheckPassed {
				log.message(t, "Units '50-app.toml' FAILURE ("+Reason(c)+"). Continuing...")
			} else {
				log.message(t, "Units '50-app.toml' SUCCESS")
			}
		})
	}
}

// systemctl is asked once per poll for all the units of a list, by name, with nothing else on
// its command line.
func TestSystemctlArguments(t *testing.T) {
	envtest.NeedTool(t, "bash")
	state := fakeSystemctl(t, map[string]string{"a.service": "active", "b.socket": "failed"})
	got, err := Systemctl{}.ActiveStates(context.Background(), []string{"a.service", "b.socket", "c.mount"})
	if err != nil || !slices.Equal(got, []string{"active", "failed", "inactive"}) {
		t.Fatalf("ActiveStates = %q, %v", got, err)
	}
	if c := calls(t, state); !slices.Equal(c, []string{"a.service b.socket c.mount"}) {
		t.Errorf("calls %q", c)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := (Systemctl{}).ActiveStates(context.Background(), []string{"a.service"}); err == nil {
		t.Error("no error without systemctl")
	}
}
