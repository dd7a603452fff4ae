package boundimage

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/fuzztest"
)

// quadletSeeds are the quadlet files of the tests and of the sample images.
func quadletSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, s := range fuzztest.Literals(f) {
		out = append(out, []byte(s))
	}
	for _, file := range fuzztest.Files(f, "images/*/files/usr/share/containers/systemd/*") {
		out = append(out, file.Data)
	}
	return out
}

// FuzzParse checks that a quadlet file either fails with a one-line error matching one of the
// package's sentinels, or yields a reference that, written back as the only Image= of a
// section (with '%' escaped), parses to itself.
func FuzzParse(f *testing.F) {
	for _, s := range quadletSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, section := range []string{"Image", "Container"} {
			ref, err := Parse("app."+strings.ToLower(section), section, bytes.NewReader(data))
			if err != nil {
				fuzztest.OneLine(t, err)
				if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrDeclaration) &&
					!errors.Is(err, bufio.ErrTooLong) {
					t.Errorf("error matches no sentinel: %v", err)
				}
				continue
			}
			if ref == "" || strings.TrimSpace(ref) != ref || strings.Contains(ref, "\n") {
				t.Errorf("reference %q is empty, padded or spans lines", ref)
			}
			again := "[" + section + "]\nImage=" + strings.ReplaceAll(ref, "%", "%%") + "\n"
			back, err := Parse("again", section, strings.NewReader(again))
			if err != nil || back != ref {
				t.Errorf("reference %q written as %q reads back as %q (%v)", ref, again, back, err)
			}
		}
	})
}

// Pools the tree of FuzzRead is built from: declaration names, and symlink targets that reach
// the quadlet files directly, through other links, in loops, and out of the root.
var (
	readNames   = []string{"a.image", "b.container", "c.image", "d.conf"}
	readTargets = []string{
		"/usr/share/containers/systemd/a.image",
		"../../../share/containers/systemd/b.container",
		"../../../../../../../outside/a.image",
		"/../outside/a.image",
		"/usr/share/containers/sd/a.image",
		"/usr/share/containers/systemd/link.image",
		"c.image",
		"..",
		"/",
		"/usr/share/containers/systemd",
		"a.image/..",
	}
	// readLinks are the other symlinks the input may place, by name inside the root.
	readLinks = []string{
		"usr/share/containers/sd",
		"usr/share/containers/systemd/link.image",
		"usr/lib/bootc/bound-images.d/c.image",
	}
)

// FuzzRead builds a deployment root whose declarations and links come from the input and
// whose quadlet files hold the second input, next to a quadlet file outside the root. Read
// must either fail with a one-line error or return images whose sources lie inside the root,
// reached without any symlink left on the way, each a regular file whose Image= is the
// returned reference.
func FuzzRead(f *testing.F) {
	quadlets := quadletSeeds(f)
	for i, q := range quadlets {
		f.Add([]byte{0, 0, 1, 1, 1, byte(i)}, q)
	}
	f.Add([]byte{0, 2, 1, 0, 5, 1, 1, 4, 1}, []byte("[Image]\nImage=quay.io/a/b:1\n[Container]\nImage=quay.io/c/d:2\n"))
	f.Add([]byte{2, 6, 1, 0, 3, 1, 1, 7, 1, 3, 0, 0}, []byte("[Image]\nImage=x\n"))
	f.Fuzz(func(t *testing.T, spec, quadlet []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		mkfile(t, filepath.Join(outside, "a.image"), []byte("[Image]\nImage=outside.example/leak:1\n"))
		for _, name := range []string{"a.image", "b.container"} {
			mkfile(t, filepath.Join(root, "usr/share/containers/systemd", name), quadlet)
		}
		if err := os.MkdirAll(filepath.Join(root, Dir), 0o755); err != nil {
			t.Fatal(err)
		}
		// Each entry is three bytes: what to place (a declaration or another link), its
		// target, and whether a declaration is a symlink or a regular file.
		for ; len(spec) >= 3; spec = spec[3:] {
			target := readTargets[int(spec[1])%len(readTargets)]
			var p string
			if spec[0] < 128 {
				p = filepath.Join(root, Dir, readNames[int(spec[0])%len(readNames)])
			} else {
				p = filepath.Join(root, readLinks[int(spec[0])%len(readLinks)])
			}
			if spec[2]%2 == 0 && spec[0] < 128 {
				os.WriteFile(p, quadlet, 0o644) // a declaration that is not a symlink
				continue
			}
			os.Symlink(target, p) // an existing name stays as it is
		}

		images, err := Read(root)
		if err != nil {
			fuzztest.OneLine(t, err)
			return
		}
		for _, im := range images {
			if !strings.HasPrefix(im.Source, "/") || path.Clean(im.Source) != im.Source {
				t.Errorf("%s: source %q is not a clean path inside the root", im.Name, im.Source)
				continue
			}
			for p := im.Source; p != "/"; p = path.Dir(p) {
				fi, err := os.Lstat(filepath.Join(root, p))
				if err != nil {
					t.Fatalf("%s: source %q: %v", im.Name, im.Source, err)
				}
				if fi.Mode()&fs.ModeSymlink != 0 {
					t.Errorf("%s: source %q still goes through the symlink %s", im.Name, im.Source, p)
				}
				if p == im.Source && !fi.Mode().IsRegular() {
					t.Errorf("%s: source %q is a %v, not a regular file", im.Name, im.Source, fi.Mode().Type())
				}
			}
			section := "Image"
			if strings.HasSuffix(im.Name, ".container") {
				section = "Container"
			}
			data, err := os.ReadFile(filepath.Join(root, im.Source))
			if err != nil {
				t.Fatal(err)
			}
			if want, err := Parse(im.Source, section, bytes.NewReader(data)); err != nil || want != im.Image {
				t.Errorf("%s: image %q, but its source %s says %q (%v)", im.Name, im.Image, im.Source, want, err)
			}
		}
	})
}

func mkfile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
