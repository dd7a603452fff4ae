package bootcount

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A greenboot.conf as distributions ship it, with the settings commented out, plus keys greenboot
// does not know.
const shippedGreenbootConf = `# greenboot configuration, sourced by bash
#
### Boot attempts before rolling back
#GREENBOOT_MAX_BOOT_ATTEMPTS=3

### Watchdog
GREENBOOT_WATCHDOG_CHECK_ENABLED=true
GREENBOOT_WATCHDOG_GRACE_PERIOD=24

### Checks to skip, by file name
DISABLED_HEALTHCHECKS=()
`

// A MicroShift-style file: the key vendors document, and one for their own scripts.
const microshiftGreenbootConf = `GREENBOOT_MAX_BOOTS=5
MICROSHIFT_WAIT_TIMEOUT_SEC=600
`

type tree map[string]string

// write lays out files under root; "->target" makes a symlink.
func (tr tree) write(t *testing.T, root string) {
	t.Helper()
	for p, content := range tr {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	vendorDir = "usr/lib/bootc/bootcount.d/"
	adminDir  = "etc/bootc/bootcount.d/"
	greenConf = "etc/greenboot/greenboot.conf"
)

func TestLoadTries(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files tree
		n     int
		from  string // file relative to the root, "" for the default
		key   string
	}{
		{"nothing", tree{}, DefaultTries, "", ""},
		{"shipped greenboot.conf sets nothing", tree{greenConf: shippedGreenbootConf}, DefaultTries, "", ""},
		{"image drop-in", tree{vendorDir + "10-tries.toml": "tries = 5\n"}, 5, vendorDir + "10-tries.toml", KeyTries},
		{"later drop-in wins, an empty one changes nothing", tree{
			vendorDir + "10.toml": "tries = 5\n",
			vendorDir + "20.toml": "tries = 4 # fewer\n",
			vendorDir + "30.toml": "# nothing here\n",
		}, 4, vendorDir + "20.toml", KeyTries},
		{"greenboot.conf over the image", tree{
			vendorDir + "10.toml": "tries = 5\n",
			greenConf:             "GREENBOOT_MAX_BOOT_ATTEMPTS=2\n",
		}, 2, greenConf, KeyGreenbootAttempts},
		{"administrator over greenboot.conf", tree{
			vendorDir + "10.toml": "tries = 5\n",
			greenConf:             "GREENBOOT_MAX_BOOT_ATTEMPTS=2\n",
			adminDir + "99.toml":  "tries = 7\n",
		}, 7, adminDir + "99.toml", KeyTries},
		{"GREENBOOT_MAX_BOOTS, as vendors document it", tree{greenConf: microshiftGreenbootConf}, 5, greenConf, KeyGreenbootBoots},
		{"GREENBOOT_MAX_BOOT_ATTEMPTS wins over GREENBOOT_MAX_BOOTS", tree{
			greenConf: "GREENBOOT_MAX_BOOTS=5\nexport GREENBOOT_MAX_BOOT_ATTEMPTS='4'\n",
		}, 4, greenConf, KeyGreenbootAttempts},
		{"an empty greenboot value is unset", tree{
			vendorDir + "10.toml": "tries = 5\n",
			greenConf:             "GREENBOOT_MAX_BOOT_ATTEMPTS=\nGREENBOOT_MAX_BOOTS=\"\"\n",
		}, 5, vendorDir + "10.toml", KeyTries},
		{"the administrator's file masks the image's of the same name", tree{
			vendorDir + "10.toml": "tries = 5\n",
			adminDir + "10.toml":  "",
		}, DefaultTries, "", ""},
		{"a /dev/null symlink masks too", tree{
			vendorDir + "10.toml": "tries = 5\n",
			vendorDir + "20.toml": "tries = 6\n",
			adminDir + "20.toml":  "->/dev/null",
		}, 5, vendorDir + "10.toml", KeyTries},
		{"other names are not drop-ins", tree{
			vendorDir + "10.toml":      "tries = 5\n",
			vendorDir + "20.conf":      "tries = 9\n",
			vendorDir + ".30.toml":     "tries = 9\n",
			vendorDir + ".toml":        "tries = 9\n",
			vendorDir + "40.toml.orig": "tries = 9\n",
			vendorDir + "50.toml/":     "",
			vendorDir + "60.toml":      "->nowhere.toml",
		}, 5, vendorDir + "10.toml", KeyTries},
		{"a symlink within the directory", tree{
			vendorDir + "real":    "tries = 8\n",
			vendorDir + "10.toml": "->real",
		}, 8, vendorDir + "10.toml", KeyTries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.files.write(t, root)
			got, err := LoadTries(SourcesIn(root, filepath.Join(root, "etc")))
			if err != nil {
				t.Fatal(err)
			}
			want := Tries{N: tc.n, Key: tc.key}
			if tc.from != "" {
				want.Source = filepath.Join(root, tc.from)
			}
			if got != want {
				t.Errorf("LoadTries = %+v, want %+v", got, want)
			}
		})
	}
}

func TestTriesString(t *testing.T) {
	if s := (Tries{N: 3}).String(); s != "3 (default)" {
		t.Errorf("default: %q", s)
	}
	if s := (Tries{N: 2, Source: "/etc/greenboot/greenboot.conf", Key: KeyGreenbootAttempts}).String(); s != "2 (GREENBOOT_MAX_BOOT_ATTEMPTS in /etc/greenboot/greenboot.conf)" {
		t.Errorf("configured: %q", s)
	}
}

func TestLoadTriesErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files tree
		file  string // the file the error must name
		want  string
	}{
		{"zero tries", tree{vendorDir + "10.toml": "tries = 0\n"}, vendorDir + "10.toml", "tries = 0: want an integer from 1 to 100"},
		{"too many", tree{adminDir + "10.toml": "tries = 101\n"}, adminDir + "10.toml", "tries = 101"},
		{"negative", tree{adminDir + "10.toml": "tries = -1\n"}, adminDir + "10.toml", "tries = -1"},
		{"a string", tree{adminDir + "10.toml": "tries = \"3\"\n"}, adminDir + "10.toml", `tries = "3": want an integer`},
		{"a float", tree{adminDir + "10.toml": "tries = 3.0\n"}, adminDir + "10.toml", "tries = 3: want an integer"},
		{"unknown key", tree{adminDir + "10.toml": "tries = 3\nmax-tries = 2\n"}, adminDir + "10.toml", `unknown key "max-tries"`},
		{"a table", tree{adminDir + "10.toml": "[bootcount]\ntries = 3\n"}, adminDir + "10.toml", `unknown key "bootcount"`},
		{"bad TOML", tree{vendorDir + "10.toml": "tries = \n"}, vendorDir + "10.toml", "line 1"},
		{"greenboot: not a number", tree{greenConf: "GREENBOOT_MAX_BOOT_ATTEMPTS=three\n"}, greenConf, `invalid boot counting configuration: GREENBOOT_MAX_BOOT_ATTEMPTS: "three": want an integer from 1 to 100`},
		{"greenboot: zero", tree{greenConf: "# tries\n\nGREENBOOT_MAX_BOOTS=0\n"}, greenConf, `GREENBOOT_MAX_BOOTS: "0"`},
		{"greenboot: too many", tree{greenConf: "GREENBOOT_MAX_BOOTS=101\n"}, greenConf, `GREENBOOT_MAX_BOOTS: "101"`},
		{"greenboot: spaces inside quotes", tree{greenConf: "GREENBOOT_MAX_BOOT_ATTEMPTS=\" 3\"\n"}, greenConf, `" 3"`},
		{"greenboot: expansion", tree{greenConf: "N=3\nGREENBOOT_MAX_BOOT_ATTEMPTS=$N\n"}, greenConf, `"$N" uses shell expansion`},
		{"greenboot: array", tree{greenConf: "GREENBOOT_MAX_BOOT_ATTEMPTS=(3)\n"}, greenConf, "an array, want a number"},
		// A mistake is reported even where a higher source overrides it.
		{"overridden but wrong", tree{
			adminDir + "10.toml":  "tries = 2\n",
			vendorDir + "10.toml": "tries = 0\n",
			vendorDir + "20.toml": "tries = 0\n",
		}, vendorDir + "20.toml", "tries = 0"},
		{"overridden GREENBOOT_MAX_BOOTS but wrong", tree{greenConf: "GREENBOOT_MAX_BOOT_ATTEMPTS=2\nGREENBOOT_MAX_BOOTS=x\n"}, greenConf, "GREENBOOT_MAX_BOOTS"},
		{"a symlink out of the directory", tree{adminDir + "10.toml": "->../../../usr/lib/bootc/bootcount.d/real", vendorDir + "real": "tries = 2\n"}, adminDir + "10.toml", "reading boot counting drop-in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.files.write(t, root)
			_, err := LoadTries(SourcesIn(root, filepath.Join(root, "etc")))
			if err == nil {
				t.Fatal("LoadTries succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, filepath.Join(root, tc.file)) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q; want one line naming %s and %q", msg, tc.file, tc.want)
			}
			if !strings.Contains(tc.name, "symlink") && !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("error %q is not ErrInvalidConfig", msg)
			}
		})
	}
}

// greenboot.conf as administrators write it: the value bash would leave is the one taken.
func TestParseGreenboot(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		n    int // 0: nothing set
		key  string
	}{
		{"shipped", shippedGreenbootConf, 0, ""},
		{"vendors' key", microshiftGreenbootConf, 5, KeyGreenbootBoots},
		{"quoted", "GREENBOOT_MAX_BOOT_ATTEMPTS=\"2\"\n", 2, KeyGreenbootAttempts},
		{"single-quoted, exported, commented", "export GREENBOOT_MAX_BOOT_ATTEMPTS='4' # fewer\n", 4, KeyGreenbootAttempts},
		{"leading zero", "GREENBOOT_MAX_BOOT_ATTEMPTS=07\n", 7, KeyGreenbootAttempts},
		{"later assignment wins", "GREENBOOT_MAX_BOOT_ATTEMPTS=2\nGREENBOOT_MAX_BOOT_ATTEMPTS=6\n", 6, KeyGreenbootAttempts},
		{"both keys", "GREENBOOT_MAX_BOOTS=9\nGREENBOOT_MAX_BOOT_ATTEMPTS=2\n", 2, KeyGreenbootAttempts},
		{"commented out", "#GREENBOOT_MAX_BOOT_ATTEMPTS=2\n", 0, ""},
		{"empty", "GREENBOOT_MAX_BOOT_ATTEMPTS=\n", 0, ""},
		// bash runs `A=1 cmd` with A set for cmd alone, and sets nothing from a quote left open.
		{"command environment", "GREENBOOT_MAX_BOOT_ATTEMPTS=2 true\n", 0, ""},
		{"unclosed quote", "GREENBOOT_MAX_BOOT_ATTEMPTS=\"2\n", 0, ""},
		{"arrays and other tools' keys", "DISABLED_HEALTHCHECKS=(\n  \"a.sh\"\n)\nMICROSHIFT_WAIT_TIMEOUT_SEC=600\nGREENBOOT_MAX_BOOT_ATTEMPTS=3\n", 3, KeyGreenbootAttempts},
	} {
		got, err := ParseGreenboot("greenboot.conf", []byte(tc.src))
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		switch {
		case tc.n == 0 && got != nil:
			t.Errorf("%s: tries %+v, want none", tc.name, got)
		case tc.n != 0 && (got == nil || *got != Tries{N: tc.n, Source: "greenboot.conf", Key: tc.key}):
			t.Errorf("%s: tries %+v, want %d from %s", tc.name, got, tc.n, tc.key)
		}
	}
}
