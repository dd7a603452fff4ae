package kargs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/cmdline"
)

// writeRoot creates an image root under t.TempDir(). files maps names in
// kargs.d to their content; a nil map means no kargs.d directory at all.
func writeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if files == nil {
		return root
	}
	dir := filepath.Join(root, Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func rendered(args []cmdline.Arg) string {
	s := make([]string, len(args))
	for i, a := range args {
		s[i] = a.String()
	}
	return strings.Join(s, " ")
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // nil: no kargs.d
		arch  string
		found bool
		want  string
		err   error
		msg   []string // substrings the error must contain
	}{
		{name: "no directory", files: nil, found: false},
		{name: "empty directory", files: map[string]string{}, found: true},
		{
			name:  "single file",
			files: map[string]string{"10-a.toml": `kargs = ["console=ttyS0,115200n8", "nosmt"]`},
			found: true, want: "console=ttyS0,115200n8 nosmt",
		},
		{
			name: "files in name order, not creation order",
			files: map[string]string{
				"20-b.toml": `kargs = ["b=2"]`,
				"10-a.toml": `kargs = ["a=1"]`,
				"9-z.toml":  `kargs = ["z"]`,
				"00.toml":   `kargs = ["first"]`,
			},
			found: true, want: "first a=1 b=2 z",
		},
		{
			name: "non-toml files ignored",
			files: map[string]string{
				"10-a.toml":         `kargs = ["a"]`,
				"README":            "not toml at all [",
				"10-a.toml.rpmsave": `kargs = ["old"]`,
				"x.TOML":            `kargs = ["upper"]`,
				".toml":             `kargs = ["bare"]`,
				"20.conf":           `kargs = ["conf"]`,
			},
			found: true, want: "a",
		},
		{
			name: "architecture filtering",
			files: map[string]string{
				"10-x86.toml":  "kargs = [\"x86only\"]\nmatch-architectures = [\"x86_64\"]",
				"20-arm.toml":  "kargs = [\"armonly\"]\nmatch-architectures = [\"aarch64\"]",
				"30-both.toml": "kargs = [\"both\"]\nmatch-architectures = [\"aarch64\", \"x86_64\"]",
				"40-all.toml":  `kargs = ["all"]`,
				"50-none.toml": "kargs = [\"never\"]\nmatch-architectures = []",
			},
			arch:  "aarch64",
			found: true, want: "armonly both all",
		},
		{
			name: "architecture filtering x86_64",
			files: map[string]string{
				"10-x86.toml": "kargs = [\"x86only\"]\nmatch-architectures = [\"x86_64\"]",
				"20-arm.toml": "kargs = [\"armonly\"]\nmatch-architectures = [\"aarch64\"]",
			},
			found: true, want: "x86only",
		},
		{
			name: "go names do not match",
			files: map[string]string{
				"10.toml": "kargs = [\"a\"]\nmatch-architectures = [\"amd64\"]",
			},
			found: true, want: "",
		},
		{
			name:  "one string with several arguments",
			files: map[string]string{"10.toml": `kargs = ["a=1 b=2", "c"]`},
			found: true, want: "a=1 b=2 c",
		},
		{
			name:  "quoting kept",
			files: map[string]string{"10.toml": `kargs = ['dyndbg="file x.c +p"', '"k=a b"']`},
			found: true, want: `dyndbg="file x.c +p" "k=a b"`,
		},
		{
			name: "duplicate keys kept, exact duplicates dropped",
			files: map[string]string{
				"10.toml": `kargs = ["console=ttyS0", "console=tty0", "nosmt"]`,
				"20.toml": `kargs = ["console_x=1", "console-x=1", "nosmt", "console=ttyS0"]`,
			},
			found: true, want: "console=ttyS0 console=tty0 nosmt console_x=1",
		},
		{
			name:  "empty kargs list",
			files: map[string]string{"10.toml": `kargs = []`},
			found: true, want: "",
		},
		{
			name:  "unknown key",
			files: map[string]string{"10-a.toml": "kargs = [\"a\"]\nfoo = \"bar\""},
			err:   ErrInvalid, msg: []string{"10-a.toml", `unknown key "foo"`},
		},
		{
			name:  "key spelled with underscore is unknown",
			files: map[string]string{"10-a.toml": "kargs = [\"a\"]\nmatch_architectures = [\"x86_64\"]"},
			err:   ErrInvalid, msg: []string{"10-a.toml", `"match_architectures"`},
		},
		{
			name:  "key case matters",
			files: map[string]string{"10-a.toml": `Kargs = ["a"]`},
			err:   ErrInvalid, msg: []string{"10-a.toml", `unknown key "Kargs"`},
		},
		{
			name:  "table is an unknown key",
			files: map[string]string{"10-a.toml": "kargs = [\"a\"]\n[extra]\nx = 1"},
			err:   ErrInvalid, msg: []string{`unknown key "extra"`},
		},
		{
			name:  "missing kargs",
			files: map[string]string{"10-a.toml": `match-architectures = ["x86_64"]`},
			err:   ErrInvalid, msg: []string{"10-a.toml", `missing required key "kargs"`},
		},
		{
			name:  "kargs not a list",
			files: map[string]string{"10-a.toml": `kargs = "nosmt"`},
			err:   ErrInvalid, msg: []string{"10-a.toml", "list of strings"},
		},
		{
			name:  "kargs with a number",
			files: map[string]string{"10-a.toml": `kargs = ["a", 1]`},
			err:   ErrInvalid, msg: []string{"10-a.toml", "list of strings"},
		},
		{
			name:  "match-architectures not a list",
			files: map[string]string{"10-a.toml": "kargs = [\"a\"]\nmatch-architectures = \"x86_64\""},
			err:   ErrInvalid, msg: []string{"10-a.toml", "match-architectures"},
		},
		{
			name:  "malformed toml",
			files: map[string]string{"10-a.toml": "kargs = [\"a\",\n\n oops"},
			err:   ErrInvalid, msg: []string{"10-a.toml", "line"},
		},
		{
			name:  "unknown key even when the architecture does not match",
			files: map[string]string{"10-a.toml": "kargs = [\"a\"]\nmatch-architectures = [\"s390x\"]\nbogus = 1"},
			err:   ErrInvalid, msg: []string{"bogus"},
		},
		{
			name:  "unterminated quote",
			files: map[string]string{"10-a.toml": `kargs = ["ok", 'k="a b']`},
			err:   cmdline.ErrUnterminatedQuote, msg: []string{"10-a.toml", "kargs[1]"},
		},
		{
			name:  "empty key",
			files: map[string]string{"10-a.toml": `kargs = ["=x"]`},
			err:   cmdline.ErrEmptyKey, msg: []string{"10-a.toml", "kargs[0]"},
		},
		{
			name:  "init arguments refused",
			files: map[string]string{"10-a.toml": `kargs = ["a -- b"]`},
			err:   ErrInvalid, msg: []string{"10-a.toml", "init"},
		},
		{
			name: "bad file after good ones fails the whole load",
			files: map[string]string{
				"10.toml": `kargs = ["a"]`,
				"20.toml": `kargs = [`,
			},
			err: ErrInvalid, msg: []string{"20.toml"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeRoot(t, tt.files)
			arch := tt.arch
			if arch == "" {
				arch = "x86_64"
			}
			set, err := Load(root, arch)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error %v does not wrap ErrInvalid", err)
				}
				for _, m := range tt.msg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %q", err, m)
					}
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error is not one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if set.Found != tt.found {
				t.Errorf("Found = %v, want %v", set.Found, tt.found)
			}
			if got := rendered(set.Args); got != tt.want {
				t.Errorf("args = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadFilesystemCases(t *testing.T) {
	t.Run("symlink escaping the root is refused", func(t *testing.T) {
		outside := filepath.Join(t.TempDir(), "host.toml")
		if err := os.WriteFile(outside, []byte(`kargs = ["from-host"]`), 0o644); err != nil {
			t.Fatal(err)
		}
		root := writeRoot(t, map[string]string{})
		if err := os.Symlink(outside, filepath.Join(root, Dir, "10.toml")); err != nil {
			t.Fatal(err)
		}
		if set, err := Load(root, "x86_64"); err == nil {
			t.Fatalf("Load followed a symlink out of the root: %q", rendered(set.Args))
		}
	})
	t.Run("symlink inside the root is followed", func(t *testing.T) {
		root := writeRoot(t, map[string]string{})
		target := filepath.Join(root, "usr/share/k.toml")
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, []byte(`kargs = ["shared"]`), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../../../share/k.toml", filepath.Join(root, Dir, "10.toml")); err != nil {
			t.Fatal(err)
		}
		set, err := Load(root, "x86_64")
		if err != nil {
			t.Fatal(err)
		}
		if got := rendered(set.Args); got != "shared" {
			t.Errorf("args = %q", got)
		}
	})
	t.Run("kargs.d that is a file", func(t *testing.T) {
		root := t.TempDir()
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(Dir)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, Dir), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(root, "x86_64"); err == nil {
			t.Fatal("Load accepted a kargs.d that is a regular file")
		}
	})
	t.Run("missing root", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "nope"), "x86_64"); err == nil {
			t.Fatal("Load accepted a missing root")
		}
	})
	t.Run("unknown architecture name", func(t *testing.T) {
		root := writeRoot(t, map[string]string{})
		for _, arch := range []string{"", "amd64", "arm64", "ppc64le"} {
			if _, err := Load(root, arch); !errors.Is(err, ErrUnknownArch) {
				t.Errorf("Load(arch %q) error = %v, want ErrUnknownArch", arch, err)
			}
		}
	})
}

func TestArchFromGOARCH(t *testing.T) {
	tests := []struct {
		goarch, want string
	}{
		{"amd64", "x86_64"},
		{"arm64", "aarch64"},
		{"ppc64le", "powerpc64"},
		{"ppc64", "powerpc64"},
		{"s390x", "s390x"},
		{"riscv64", "riscv64"},
		{"386", "x86"},
		{"loong64", "loongarch64"},
	}
	for _, tt := range tests {
		got, err := ArchFromGOARCH(tt.goarch)
		if err != nil || got != tt.want {
			t.Errorf("ArchFromGOARCH(%q) = %q, %v; want %q", tt.goarch, got, err, tt.want)
		}
		if err := checkArch(got); err != nil {
			t.Errorf("mapped name %q is not accepted by Load: %v", got, err)
		}
	}
	for _, bad := range []string{"wasm", "x86_64", ""} {
		if _, err := ArchFromGOARCH(bad); !errors.Is(err, ErrUnknownArch) {
			t.Errorf("ArchFromGOARCH(%q) error = %v, want ErrUnknownArch", bad, err)
		}
	}
	if a, err := HostArch(); err != nil || checkArch(a) != nil {
		t.Errorf("HostArch() = %q, %v", a, err)
	}
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name     string
		current  string
		old, new map[string]string // nil: no kargs.d
		arch     string
		want     string
	}{
		{
			name:    "image adds an argument",
			current: "root=UUID=1 rw",
			old:     map[string]string{"10.toml": `kargs = ["a=1"]`},
			new:     map[string]string{"10.toml": `kargs = ["a=1", "b=2"]`},
			want:    "root=UUID=1 rw b=2",
		},
		{
			name:    "image removes an argument",
			current: "root=UUID=1 a=1 b=2 rw",
			old:     map[string]string{"10.toml": `kargs = ["a=1", "b=2"]`},
			new:     map[string]string{"10.toml": `kargs = ["b=2"]`},
			want:    "root=UUID=1 b=2 rw",
		},
		{
			name:    "changed value is a removal plus an addition",
			current: "root=UUID=1 mitigations=auto quiet",
			old:     map[string]string{"10.toml": `kargs = ["mitigations=auto"]`},
			new:     map[string]string{"10.toml": `kargs = ["mitigations=auto,nosmt"]`},
			want:    "root=UUID=1 quiet mitigations=auto,nosmt",
		},
		{
			name:    "machine-local arguments survive, even with the same key",
			current: "root=UUID=1 console=ttyS0 localarg=5 console=tty0 rd.luks.uuid=x",
			old:     map[string]string{"10.toml": `kargs = ["console=tty0"]`},
			new:     map[string]string{"10.toml": `kargs = ["console=hvc0"]`},
			want:    "root=UUID=1 console=ttyS0 localarg=5 rd.luks.uuid=x console=hvc0",
		},
		{
			name:    "duplicate keys from the image are all added",
			current: "root=UUID=1",
			old:     map[string]string{},
			new:     map[string]string{"10.toml": `kargs = ["console=ttyS0", "console=tty0"]`},
			want:    "root=UUID=1 console=ttyS0 console=tty0",
		},
		{
			name:    "only one occurrence goes when the image drops an argument",
			current: "nosmt root=UUID=1 nosmt",
			old:     map[string]string{"10.toml": `kargs = ["nosmt"]`},
			new:     map[string]string{},
			want:    "root=UUID=1 nosmt",
		},
		{
			name:    "removal matches keys with - and _ alike, values exactly",
			current: "root=UUID=1 rd.foo_bar=1 rd.foo-bar=2",
			old:     map[string]string{"10.toml": `kargs = ["rd.foo-bar=1", "rd.foo-bar=X"]`},
			new:     map[string]string{},
			want:    "root=UUID=1 rd.foo-bar=2",
		},
		{
			name:    "flag and empty value are different arguments",
			current: "k k=",
			old:     map[string]string{"10.toml": `kargs = ["k="]`},
			new:     map[string]string{},
			want:    "k",
		},
		{
			name:    "quoting of untouched and added arguments kept",
			current: `root=UUID=1 "local=a b" dyndbg="file old.c +p"`,
			old:     map[string]string{"10.toml": `kargs = ['dyndbg="file old.c +p"']`},
			new:     map[string]string{"10.toml": `kargs = ['dyndbg="file new.c +p"']`},
			want:    `root=UUID=1 "local=a b" dyndbg="file new.c +p"`,
		},
		{
			name:    "removal ignores how the argument was quoted",
			current: `root=UUID=1 "k=a b"`,
			old:     map[string]string{"10.toml": `kargs = ['k="a b"']`},
			new:     map[string]string{},
			want:    "root=UUID=1",
		},
		{
			name:    "argument the admin deleted stays deleted",
			current: "root=UUID=1",
			old:     map[string]string{"10.toml": `kargs = ["nosmt"]`},
			new:     map[string]string{"10.toml": `kargs = ["nosmt", "quiet"]`},
			want:    "root=UUID=1 quiet",
		},
		{
			name:    "added argument already present locally is not doubled",
			current: "root=UUID=1 quiet",
			old:     map[string]string{},
			new:     map[string]string{"10.toml": `kargs = ["quiet"]`},
			want:    "root=UUID=1 quiet",
		},
		{
			name:    "old image without kargs.d: everything new is added",
			current: "root=UUID=1",
			old:     nil,
			new:     map[string]string{"10.toml": `kargs = ["a", "b=1"]`},
			want:    "root=UUID=1 a b=1",
		},
		{
			name:    "new image without kargs.d leaves the line as it is",
			current: "root=UUID=1 a local",
			old:     map[string]string{"10.toml": `kargs = ["a", "b"]`},
			new:     nil,
			want:    "root=UUID=1 a local",
		},
		{
			name:    "new image with empty kargs.d withdraws the old image's arguments",
			current: "root=UUID=1 a local b",
			old:     map[string]string{"10.toml": `kargs = ["a", "b"]`},
			new:     map[string]string{},
			want:    "root=UUID=1 local",
		},
		{
			name:    "unchanged kargs.d changes nothing",
			current: `root=UUID=1  a=1   "x=1 2"`,
			old:     map[string]string{"10.toml": `kargs = ["a=1"]`},
			new:     map[string]string{"20.toml": `kargs = ["a=1"]`},
			want:    `root=UUID=1 a=1 "x=1 2"`,
		},
		{
			name:    "architecture filtering applies to both images",
			current: "root=UUID=1 armold",
			old: map[string]string{
				"10.toml": "kargs = [\"x86old\"]\nmatch-architectures = [\"x86_64\"]",
				"20.toml": "kargs = [\"armold\"]\nmatch-architectures = [\"aarch64\"]",
			},
			new: map[string]string{
				"10.toml": "kargs = [\"x86new\"]\nmatch-architectures = [\"x86_64\"]",
				"20.toml": "kargs = [\"armnew\"]\nmatch-architectures = [\"aarch64\"]",
			},
			arch: "aarch64",
			want: "root=UUID=1 armnew",
		},
		{
			name:    "an argument moving between files is no change",
			current: "root=UUID=1 a b",
			old:     map[string]string{"10.toml": `kargs = ["a"]`, "20.toml": `kargs = ["b"]`},
			new:     map[string]string{"30.toml": `kargs = ["b a"]`},
			want:    "root=UUID=1 a b",
		},
		{
			name:    "init part is kept at the end",
			current: "root=UUID=1 a -- single",
			old:     map[string]string{"10.toml": `kargs = ["a"]`},
			new:     map[string]string{"10.toml": `kargs = ["b"]`},
			want:    "root=UUID=1 b -- single",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arch := tt.arch
			if arch == "" {
				arch = "x86_64"
			}
			current, err := cmdline.Parse(tt.current)
			if err != nil {
				t.Fatal(err)
			}
			before := current.String()
			got, err := ReconcileRoots(current, writeRoot(t, tt.old), writeRoot(t, tt.new), arch)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != tt.want {
				t.Errorf("got  %q\nwant %q", got.String(), tt.want)
			}
			if current.String() != before {
				t.Errorf("current was modified: %q", current.String())
			}
		})
	}
}

func TestReconcileNilCurrent(t *testing.T) {
	newSet := Set{Found: true}
	a, err := cmdline.ParseArg("quiet")
	if err != nil {
		t.Fatal(err)
	}
	newSet.Args = []cmdline.Arg{a}
	got, err := Reconcile(nil, Set{}, newSet)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != "quiet" {
		t.Errorf("got %q", got.String())
	}
	if _, err := Reconcile(nil, Set{}, Set{Found: true, Args: []cmdline.Arg{{}}}); !errors.Is(err, cmdline.ErrEmptyKey) {
		t.Errorf("zero Arg: error = %v, want ErrEmptyKey", err)
	}
}

func TestReconcileRootsErrors(t *testing.T) {
	good := writeRoot(t, map[string]string{"10.toml": `kargs = ["a"]`})
	bad := writeRoot(t, map[string]string{"10.toml": `kargs = "a"`})
	c := &cmdline.Cmdline{}
	if _, err := ReconcileRoots(c, bad, good, "x86_64"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad old root: error = %v", err)
	}
	if _, err := ReconcileRoots(c, good, bad, "x86_64"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad new root: error = %v", err)
	}
}
