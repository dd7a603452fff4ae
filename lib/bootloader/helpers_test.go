package bootloader

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/envtest"
)

var errCrash = errors.New("simulated power cut")

// newBoot makes a /boot with the kernel and initramfs of a few boot digests.
func newBoot(t *testing.T) string {
	t.Helper()
	boot := filepath.Join(t.TempDir(), "boot")
	for _, d := range []string{"aaa", "bbb", "ccc"} {
		dir := filepath.Join(boot, "bootc", "sha256-"+d)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"vmlinuz", "initramfs.img"} {
			if err := os.WriteFile(filepath.Join(dir, f), []byte(d+f), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return boot
}

// dep is a deployment of the default stateroot booting the files of boot digest digest.
func dep(id, digest string) Deployment {
	return Deployment{
		Stateroot: "default",
		ID:        id,
		Title:     "Test OS " + id,
		Kernel:    "/bootc/sha256-" + digest + "/vmlinuz",
		Initrd:    "/bootc/sha256-" + digest + "/initramfs.img",
		Kargs:     "root=UUID=1234 rw console=ttyS0",
	}
}

func mustWrite(t *testing.T, boot string, set []Deployment, opts Options) {
	t.Helper()
	if err := WriteSet(boot, set, opts); err != nil {
		t.Fatalf("WriteSet: %v", err)
	}
}

// mustRead is ReadSet without what only ReadSet fills in (the entry files' names), so that it
// compares equal to the set written.
func mustRead(t *testing.T, boot string) []Deployment {
	t.Helper()
	set, err := ReadSet(boot)
	if err != nil {
		t.Fatalf("ReadSet: %v", err)
	}
	for i := range set {
		set[i].Entry, set[i].Counter = "", bootcount.Name{}
	}
	return set
}

func ids(set []Deployment) []string {
	var out []string
	for _, d := range set {
		out = append(out, d.Stateroot+"/"+d.ID)
	}
	return out
}

// menu is what a GRUB menu file says, as far as the tests care.
type menu struct {
	defaultEntry, timeout string
	search                []string
	entries               []menuEntry
}

type menuEntry struct {
	title, id string
	linux     []string // path, then the arguments
	initrd    string
}

// parseMenu reads the subset of GRUB script the package writes, with GRUB's quoting rules for
// single quotes and backslashes.
func parseMenu(t *testing.T, data string) menu {
	t.Helper()
	var m menu
	var cur *menuEntry
	for _, line := range strings.Split(data, "\n") {
		w := grubWords(t, line)
		if len(w) == 0 || strings.HasPrefix(w[0], "#") {
			continue
		}
		switch {
		case w[0] == "set" && strings.HasPrefix(w[1], "default="):
			m.defaultEntry = strings.TrimPrefix(w[1], "default=")
		case w[0] == "set" && strings.HasPrefix(w[1], "timeout="):
			m.timeout = strings.TrimPrefix(w[1], "timeout=")
		case w[0] == "search":
			m.search = w[1:]
		case w[0] == "menuentry":
			if len(w) != 5 || w[2] != "--id" || w[4] != "{" {
				t.Fatalf("menuentry line %q: unexpected shape %q", line, w)
			}
			m.entries = append(m.entries, menuEntry{title: w[1], id: w[3]})
			cur = &m.entries[len(m.entries)-1]
		case w[0] == "linux":
			cur.linux = w[1:]
		case w[0] == "initrd":
			cur.initrd = w[1]
		case w[0] == "}":
			cur = nil
		}
	}
	return m
}

func grubWords(t *testing.T, line string) []string {
	t.Helper()
	var words []string
	var b strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\'':
			quoted = false
		case quoted:
			b.WriteByte(c)
		case c == '\'':
			quoted, inWord = true, true
		case c == '\\' && i+1 < len(line):
			i++
			b.WriteByte(line[i])
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, b.String())
				b.Reset()
				inWord = false
			}
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	if quoted {
		t.Fatalf("unterminated quote in %q", line)
	}
	if inWord {
		words = append(words, b.String())
	}
	return words
}

// scriptCheck runs grub-script-check on a file. Outside CI a host without it loses only this
// check, not the rest of the test; under CI its absence fails the test.
func scriptCheck(t *testing.T, path string) {
	t.Helper()
	bin, err := exec.LookPath("grub-script-check")
	if err != nil {
		if envtest.Strict() {
			envtest.Missing(t, "grub-script-check is not installed (scripts/deps.sh installs it)")
		}
		t.Log("grub-script-check not installed; syntax not checked")
		return
	}
	if out, err := exec.Command(bin, path).CombinedOutput(); err != nil {
		data, _ := os.ReadFile(path)
		t.Errorf("grub-script-check %s: %v\n%s\n%s", path, err, out, data)
	}
}

// listTree returns every path under root, relative, sorted; symlinks are not followed.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}
