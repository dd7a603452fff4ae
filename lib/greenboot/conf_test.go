package greenboot

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/layout"
)

// parseCases are greenboot.conf files as administrators and vendors write them, with the
// variables bash leaves after sourcing each (a nil list: the variable is not set) and how many
// statements are reported.
var parseCases = []struct {
	name     string
	conf     string
	want     map[string][]string
	arrays   []string
	warnings int
}{
	{
		name: "shipped style",
		conf: "# Boot attempts before falling back.\n#GREENBOOT_MAX_BOOT_ATTEMPTS=3\n\n" +
			"GREENBOOT_WATCHDOG_CHECK_ENABLED=true\nGREENBOOT_WATCHDOG_GRACE_PERIOD=24\n" +
			"# checks to leave out, by file name\nDISABLED_HEALTHCHECKS=()\n",
		want: map[string][]string{
			"GREENBOOT_MAX_BOOT_ATTEMPTS":      nil,
			"GREENBOOT_WATCHDOG_CHECK_ENABLED": {"true"},
			"GREENBOOT_WATCHDOG_GRACE_PERIOD":  {"24"},
			"DISABLED_HEALTHCHECKS":            {},
		},
		arrays: []string{"DISABLED_HEALTHCHECKS"},
	},
	{
		name: "multi-line array with comments",
		conf: "DISABLED_HEALTHCHECKS=(\n  \"01_repository_dns_check.sh\"  # DNS comes late here\n" +
			"  '02_watchdog.sh'\n\n  # nothing else\n  03_plain.sh\n)\nGREENBOOT_MAX_BOOT_ATTEMPTS=5\n",
		want: map[string][]string{
			"DISABLED_HEALTHCHECKS":       {"01_repository_dns_check.sh", "02_watchdog.sh", "03_plain.sh"},
			"GREENBOOT_MAX_BOOT_ATTEMPTS": {"5"},
		},
		arrays: []string{"DISABLED_HEALTHCHECKS"},
	},
	{
		name: "one-line array, other tools' keys",
		conf: "DISABLED_HEALTHCHECKS=( \"a.sh\" \"b c.sh\" )\nGREENBOOT_MAX_BOOTS=4\nMICROSHIFT_WAIT_TIMEOUT_SEC=600\n",
		want: map[string][]string{
			"DISABLED_HEALTHCHECKS":       {"a.sh", "b c.sh"},
			"GREENBOOT_MAX_BOOTS":         {"4"},
			"MICROSHIFT_WAIT_TIMEOUT_SEC": {"600"},
		},
		arrays: []string{"DISABLED_HEALTHCHECKS"},
	},
	{
		name: "quoting and escapes",
		conf: "A='it'\\''s'\nB=\"say \\\"hi\\\" \\\\ \\n\"\nC=x\\ y\nD=\"multi\nline\"\nE=\nF=''\nG=a#b\nH=1 # comment\n",
		want: map[string][]string{
			"A": {"it's"}, "B": {`say "hi" \ \n`}, "C": {"x y"}, "D": {"multi\nline"},
			"E": {""}, "F": {""}, "G": {"a#b"}, "H": {"1"},
		},
	},
	{
		name: "several per line, export, declare, continuation",
		conf: "A=1 B=2; C=3\nexport D=4 A\ndeclare -a E=(x y)\nreadonly F=6\ntypeset -x G=7\nH=\\\n8\nexport\n",
		want: map[string][]string{
			"A": {"1"}, "B": {"2"}, "C": {"3"}, "D": {"4"}, "E": {"x", "y"}, "F": {"6"}, "G": {"7"}, "H": {"8"},
		},
		arrays: []string{"E"},
	},
	{
		name: "appending",
		conf: "L=(a)\nL+=(b c)\nS=x\nS+=y\nN+=(n)\nM+=m\nL+=z\n",
		want: map[string][]string{
			"L": {"az", "b", "c"}, "S": {"xy"}, "N": {"n"}, "M": {"m"},
		},
		arrays: []string{"L", "N"},
	},
	{
		name: "commands are left out, the rest kept",
		conf: "A=1\ntrue\nB=2 true\nC=3\necho 'quoted;\nstill the echo'; E=5\nD=(\n  x\n  y)\nF=6\n",
		want: map[string][]string{
			"A": {"1"}, "B": nil, "C": {"3"}, "D": {"x", "y"}, "E": {"5"}, "F": {"6"},
		},
		arrays:   []string{"D"},
		warnings: 3, // true, B=2 true (sets B for the command only), echo
	},
	{
		name:     "expansions kept as written",
		conf:     "X=3\nY=$X\nZ=(\"${X}.sh\")\n",
		want:     map[string][]string{"X": {"3"}, "Y": {"$X"}, "Z": {"${X}.sh"}},
		arrays:   []string{"Z"},
		warnings: 2,
	},
	{
		name:     "unterminated quote",
		conf:     "A=1\nB='open\nC=2\n",
		want:     map[string][]string{"A": {"1"}, "B": nil, "C": nil},
		warnings: 1,
	},
	{
		name:     "unterminated array",
		conf:     "A=1\nB=(x\ny\n",
		want:     map[string][]string{"A": {"1"}, "B": nil},
		warnings: 1,
	},
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases {
		t.Run(tc.name, func(t *testing.T) {
			c := Parse([]byte(tc.conf))
			for name, want := range tc.want {
				v, ok := c.Vars[name]
				if want == nil {
					if ok {
						t.Errorf("%s = %q, want unset", name, v.Values)
					}
					continue
				}
				if !ok {
					t.Errorf("%s unset, want %q", name, want)
					continue
				}
				if !slices.Equal(v.Values, want) {
					t.Errorf("%s = %q, want %q", name, v.Values, want)
				}
				if v.Array != slices.Contains(tc.arrays, name) {
					t.Errorf("%s: array = %v", name, v.Array)
				}
			}
			for name := range c.Vars {
				if _, ok := tc.want[name]; !ok {
					t.Errorf("unexpected variable %s = %q", name, c.Vars[name].Values)
				}
			}
			if len(c.Warnings) != tc.warnings {
				t.Errorf("warnings = %q, want %d", c.Warnings, tc.warnings)
			}
			for _, w := range c.Warnings {
				if !strings.HasPrefix(w, "line ") || strings.Contains(w, "\n") {
					t.Errorf("warning %q: want one line starting with its line number", w)
				}
			}
		})
	}
}

// TestParseAgreesWithBash sources each case with bash, as greenboot does, and compares what bash
// set with what Parse read, for every variable the case names. The cases run nothing but `true`,
// `echo` and `if`.
func TestParseAgreesWithBash(t *testing.T) {
	envtest.NeedTool(t, "bash")
	for _, tc := range parseCases {
		if strings.Contains(tc.conf, "$") {
			continue // bash expands what Parse keeps as written, by design
		}
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "greenboot.conf")
			if err := os.WriteFile(file, []byte(tc.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			c := Parse([]byte(tc.conf))
			for name := range tc.want {
				// The number of elements and each, NUL-terminated, or nothing when unset.
				script := `source "$1" >/dev/null 2>&1; if declare -p ` + name + ` >/dev/null 2>&1; then printf '%s\0' "${#` + name + `[@]}" "${` + name + `[@]}"; fi`
				out, err := exec.Command("bash", "-c", script, "bash", file).Output()
				if err != nil {
					t.Fatalf("bash: %v", err)
				}
				var bash []string
				set := len(out) > 0
				if set {
					fields := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
					bash = fields[1:]
					if fields[0] == "0" {
						bash = []string{}
					}
				}
				got := c.List(name)
				_, parsed := c.Vars[name]
				if parsed != set || !slices.Equal(got, bash) {
					t.Errorf("%s: Parse %v %q, bash %v %q", name, parsed, got, set, bash)
				}
			}
		})
	}
}

func TestGetAndList(t *testing.T) {
	c := Parse([]byte("A=(x y)\nB=z\nE=()\n"))
	for _, tc := range []struct {
		name string
		get  string
		ok   bool
		list []string
	}{
		{"A", "x", true, []string{"x", "y"}},
		{"B", "z", true, []string{"z"}},
		{"E", "", true, []string{}},
		{"U", "", false, nil},
	} {
		get, ok := c.Get(tc.name)
		if get != tc.get || ok != tc.ok || !slices.Equal(c.List(tc.name), tc.list) {
			t.Errorf("%s: Get = %q %v, List = %q", tc.name, get, ok, c.List(tc.name))
		}
	}
}

func TestLoad(t *testing.T) {
	root := t.TempDir()
	c, err := Load(root)
	if err != nil || len(c.Vars) != 0 {
		t.Fatalf("Load without a file = %v, %v", c, err)
	}
	path := layout.GreenbootConf(filepath.Join(root, "etc"))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	const text = "DISABLED_HEALTHCHECKS=(\"x.sh\")\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(root); err != nil || !slices.Equal(c.List("DISABLED_HEALTHCHECKS"), []string{"x.sh"}) {
		t.Fatalf("Load = %v, %v", c, err)
	}
	if data, _ := os.ReadFile(path); string(data) != text {
		t.Errorf("the file changed: %q", data)
	}
	if err := os.Chmod(path, 0); err == nil && os.Getuid() != 0 {
		if _, err := Load(root); err == nil {
			t.Error("an unreadable file gave no error")
		}
	}
}

// render writes vars as a file Parse reads back to the same variables, with every value single-
// quoted (bash reads it the same way).
func render(vars map[string]*Var) []byte {
	names := make([]string, 0, len(vars))
	for n := range vars {
		names = append(names, n)
	}
	sort.Strings(names)
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	var b strings.Builder
	for _, n := range names {
		v := vars[n]
		if v.Array {
			b.WriteString(n + "=(")
			for _, e := range v.Values {
				b.WriteString(" " + quote(e))
			}
			b.WriteString(" )\n")
			continue
		}
		b.WriteString(n + "=" + quote(v.Values[0]) + "\n")
	}
	return []byte(b.String())
}
