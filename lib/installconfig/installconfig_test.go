package installconfig

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoad(t *testing.T) {
	const usr, etc, run = "usr/lib/bootc/install/", "etc/bootc/install/", "run/bootc/install/"
	cases := []struct {
		name   string
		files  map[string]string
		want   string // JSON of the merged configuration
		public string // JSON without kargs
	}{
		{"none", nil, `{}`, `{}`},
		{"table form", map[string]string{usr + "00-os.toml": "[install.filesystem.root]\ntype = \"xfs\"\n"},
			`{"root-fs-type":"xfs","filesystem":{"root":{"type":"xfs"}}}`, ""},
		{"short form fills the table", map[string]string{usr + "00-os.toml": "[install]\nroot-fs-type = \"btrfs\"\n"},
			`{"root-fs-type":"btrfs","filesystem":{"root":{"type":"btrfs"}}}`, ""},
		{"later file wins, kargs accumulate", map[string]string{
			usr + "00-base.toml":  "[install]\nroot-fs-type = \"xfs\"\nkargs = [\"a=1\"]\nkarg-deletes = [\"quiet\"]\nstateroot = \"base\"\n",
			usr + "10-child.toml": "[install]\nkargs = [\"b=2\", \"c\"]\nstateroot = \"child\"\nbootloader = \"systemd\"\n",
			usr + "20-fs.toml":    "[install.filesystem.root]\ntype = \"ext4\"\n",
		}, `{"root-fs-type":"ext4","filesystem":{"root":{"type":"ext4"}},"kargs":["a=1","b=2","c"],"karg-deletes":["quiet"],"stateroot":"child","bootloader":"systemd"}`,
			`{"root-fs-type":"ext4","filesystem":{"root":{"type":"ext4"}},"stateroot":"child","bootloader":"systemd"}`},
		{"same name in /etc replaces the /usr file", map[string]string{
			usr + "50-x.toml": "[install]\nkargs = [\"from-usr\"]\nroot-fs-type = \"xfs\"\n",
			etc + "50-x.toml": "[install]\nkargs = [\"from-etc\"]\n",
		}, `{"kargs":["from-etc"]}`, `{}`},
		{"run beats etc, names order across dirs", map[string]string{
			etc + "10-a.toml": "[install]\nbootloader = \"grub\"\n",
			run + "10-a.toml": "[install]\nbootloader = \"none\"\n",
			usr + "90-z.toml": "[install]\nblock = [\"tpm2-luks\", \"direct\"]\n",
		}, `{"block":["tpm2-luks","direct"],"bootloader":"none"}`, ""},
		{"architecture filter", map[string]string{
			usr + "10-other.toml": "[install]\nmatch-architectures = [\"aarch64\"]\nkargs = [\"arm=1\"]\nroot-fs-type = \"btrfs\"\n",
			usr + "20-mine.toml":  "[install]\nmatch-architectures = [\"x86_64\", \"aarch64\"]\nkargs = [\"x86=1\"]\n",
		}, `{"kargs":["x86=1"],"match-architectures":["x86_64","aarch64"]}`, ""},
		{"empty mount specs are kept", map[string]string{usr + "00.toml": "[install]\nroot-mount-spec = \"\"\nboot-mount-spec = \"LABEL=boot\"\n"},
			`{"root-mount-spec":"","boot-mount-spec":"LABEL=boot"}`, ""},
		{"other files ignored", map[string]string{usr + "README": "not toml", usr + "00.toml.bak": "junk = 1"}, `{}`, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, c.files)
			got, err := Load(root, "x86_64")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(got)
			if string(b) != c.want {
				t.Errorf("merged = %s\nwant     %s", b, c.want)
			}
			if c.public != "" {
				b, _ := json.Marshal(got.Public())
				if string(b) != c.public {
					t.Errorf("public = %s\nwant     %s", b, c.public)
				}
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name, content string
		is            error
		msg           string
	}{
		{"unknown key", "[install]\nroot-fs-typ = \"xfs\"\n", ErrUnknownKey, `99-bad.toml: unknown key "install.root-fs-typ"`},
		{"unknown table", "[other]\nx = 1\n", ErrUnknownKey, `unknown key "other"`},
		{"unknown nested", "[install.filesystem.root]\ntype = \"xfs\"\nsize = 3\n", ErrUnknownKey, `"install.filesystem.root.size"`},
		{"bad fs", "[install]\nroot-fs-type = \"ntfs\"\n", ErrInvalid, `root filesystem type "ntfs"`},
		{"bad block", "[install]\nblock = [\"lvm\"]\n", ErrInvalid, `block setup "lvm"`},
		{"bad bootloader", "[install]\nbootloader = \"lilo\"\n", ErrInvalid, `bootloader "lilo"`},
		{"bad stateroot", "[install]\nstateroot = \"../x\"\n", ErrInvalid, `stateroot`},
		{"bad toml", "[install\n", ErrInvalid, `99-bad.toml`},
		{"wrong type", "[install]\nkargs = \"a=1\"\n", ErrInvalid, `99-bad.toml`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			write(t, root, map[string]string{"usr/lib/bootc/install/99-bad.toml": c.content})
			_, err := Load(root, "x86_64")
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.msg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error = %v, want %v containing %q on one line", err, c.is, c.msg)
			}
		})
	}
}

func TestFSType(t *testing.T) {
	if got := (&Config{RootFSType: "xfs"}).FSType(); got != "xfs" {
		t.Errorf("FSType = %q", got)
	}
	c := &Config{RootFSType: "xfs", Filesystem: &Filesystem{Root: &FilesystemRoot{Type: "ext4"}}}
	if got := c.FSType(); got != "ext4" {
		t.Errorf("FSType = %q, want the table's", got)
	}
}
