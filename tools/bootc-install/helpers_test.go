package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/sysroottest"
)

func TestMain(m *testing.M) {
	if os.Getenv("BOOTC_LIBEXEC_DIR") == "" {
		dir, err := os.MkdirTemp("", "bootc-install-test-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		bin, err := sysroottest.Tools(dir, "bootc-fetch", "bootc-bound-images")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
		os.Setenv("BOOTC_LIBEXEC_DIR", bin)
		code := m.Run()
		os.RemoveAll(dir)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// imageFiles are what the test image carries beyond fetchtest.Bootable's kernel and os-release:
// kargs.d, a systemd-boot binary, and /etc files whose metadata the /etc copy must keep.
func imageFiles() []fetchtest.File {
	dir := func(p string) fetchtest.File { return fetchtest.File{Path: p, Mode: fs.ModeDir | 0o755} }
	return []fetchtest.File{
		dir("usr/lib/bootc"), dir("usr/lib/bootc/kargs.d"),
		{Path: "usr/lib/bootc/kargs.d/10-test.toml", Data: []byte(`kargs = ["console=ttyS0", "image.karg=1", "quiet"]` + "\n")},
		dir("usr/lib/systemd"), dir("usr/lib/systemd/boot"), dir("usr/lib/systemd/boot/efi"),
		{Path: "usr/lib/systemd/boot/efi/systemd-bootx64.efi", Data: []byte("MZ test systemd-boot\n")},
		{Path: "etc/secret", Mode: 0o600, UID: 0, GID: 42, Data: []byte("s3cret\n"), Xattrs: map[string]string{"user.test": "kept"}},
		dir("etc/app.d"),
		{Path: "etc/app.d/app.conf", Data: []byte("a=1\n")},
	}
}

// writeImage writes the test image to an OCI layout and returns its --source-imgref.
func writeImage(t *testing.T) (string, fetchtest.Built) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	b, err := fetchtest.WriteLayout(dir, "latest", fetchtest.Bootable("1.0", imageFiles()...))
	if err != nil {
		t.Fatal(err)
	}
	return "oci:" + dir + ":latest", b
}

type result struct {
	code           int
	stdout, stderr string
}

// install runs the command line in-process, as main does. The install configuration comes from
// an empty directory and no container environment exists unless args say otherwise.
func install(t *testing.T, args ...string) result {
	t.Helper()
	t.Setenv("BOOTC_INSTALL_CONFIG_ROOT", t.TempDir())
	t.Setenv("BOOTC_CONTAINERENV", filepath.Join(t.TempDir(), "no-containerenv"))
	var stdout, stderr bytes.Buffer
	c := &CLI{}
	code := cli.Run(name, description, c, args, &stdout, &stderr, c.runner(&stdout, &stderr))
	return result{code, stdout.String(), stderr.String()}
}

func mustInstall(t *testing.T, args ...string) result {
	t.Helper()
	r := install(t, args...)
	if r.code != 0 {
		t.Fatalf("bootc-install %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// errorLine is how bootc-install reports an error (its own, after the command it was given),
// or bootc-fetch one it ran into.
var errorLine = regexp.MustCompile(`^(bootc-install( [a-z-]+)?|bootc-fetch): error: `)

// oneLineError checks a failure reported as exactly one error line containing want.
func oneLineError(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("succeeded, want an error containing %q", want)
		return
	}
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	// A failing step tool reports its own error; bootc-install then adds nothing.
	if !errorLine.MatchString(last) || !strings.Contains(last, want) {
		t.Errorf("stderr %q: want a last line \"bootc-install COMMAND: error: …%s…\"", r.stderr, want)
	}
	for _, l := range lines[:len(lines)-1] {
		if strings.Contains(l, "error") {
			t.Errorf("more than one error line: %q", r.stderr)
		}
	}
}

func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	envtest.NeedRoot(t)
	envtest.NeedTool(t, tools...)
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sparse makes an image file of the given size.
func sparse(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

// attached lists the loop devices backed by file.
func attached(t *testing.T, file string) string {
	t.Helper()
	return strings.TrimSpace(sh(t, "losetup", "--associated", file))
}
