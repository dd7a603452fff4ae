package bls

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"bootc-1.conf":  "title old\nversion 1\nsort-key bootc\nlinux /v1\n",
		"bootc-2.conf":  "title new\nversion 2\nsort-key bootc\nlinux /v2\noptions quiet\n",
		"other-os.conf": "title Other\nlinux /o\n",
		// Each of these would fail to parse, so reading any of them fails the test.
		".bootc-3.conf12345":  "garbage",      // renameio temporary
		".hidden.conf":        "garbage",      // hidden
		"README":              "not an entry", // wrong suffix
		"bootc-4.conf.rpmnew": "linux\n",      // wrong suffix
	})
	if err := os.Mkdir(filepath.Join(dir, "sub.conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A symlink counts as the file it points to; a dangling one is skipped.
	if err := os.Symlink("bootc-2.conf", filepath.Join(dir, "link.conf")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere.conf", filepath.Join(dir, "dangling.conf")); err != nil {
		t.Fatal(err)
	}
	entries, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(entries), []string{"link.conf", "bootc-2.conf", "bootc-1.conf", "other-os.conf"}; !slices.Equal(got, want) {
		t.Fatalf("ReadDir order = %v; want %v", got, want)
	}
	if entries[1].Title != "new" || entries[1].Cmdline() != "quiet" {
		t.Errorf("bootc-2.conf parsed as %#v", entries[1])
	}

	empty := t.TempDir()
	entries, err = ReadDir(empty)
	if err != nil || len(entries) != 0 {
		t.Errorf("ReadDir(empty) = %v, %v", entries, err)
	}
}

func TestReadDirErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"good.conf": "linux /v\n",
		"bad.conf":  "title t\nlinux /v\ninitrd\n",
	})
	_, err := ReadDir(dir)
	if err == nil {
		t.Fatal("ReadDir with a bad file succeeded")
	}
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "bad.conf: line 3") || !strings.Contains(err.Error(), dir) {
		t.Errorf("ReadDir error = %q; want it to name %s/bad.conf line 3", err, dir)
	}

	_, err = ReadDir(filepath.Join(dir, "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadDir(missing) = %v; want ErrNotExist", err)
	}
}

func TestWriteFile(t *testing.T) {
	// The mode must not depend on the caller's umask.
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)

	dir := t.TempDir()
	e := Entry{
		Name:    "bootc-1.conf",
		Title:   "Fedora (bootc)",
		Version: "1",
		SortKey: "bootc",
		Linux:   "/bootc/ab/vmlinuz",
		Initrd:  []string{"/bootc/ab/initramfs.img"},
		Options: []string{"root=LABEL=root rw"},
		Other:   []Field{{"x-bootc-deployment", "default/1"}},
	}
	if err := WriteFile(dir, &e); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, e.Name)
	want := "title Fedora (bootc)\nversion 1\nsort-key bootc\nlinux /bootc/ab/vmlinuz\ninitrd /bootc/ab/initramfs.img\n" +
		"options root=LABEL=root rw\nx-bootc-deployment default/1\n"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != want {
		t.Errorf("file content =\n%s\nwant\n%s", data, want)
	}
	checkMode(t, path, 0o644)

	// Replacing an existing file with other permissions leaves 0644 and no temporaries behind.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	e.Options = []string{"root=LABEL=root ro", "quiet"}
	if err := WriteFile(dir, &e); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path, 0o644)
	entries, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || !reflect.DeepEqual(entries[0], e) {
		t.Errorf("ReadDir after rewrite = %#v; want [%#v]", entries, e)
	}
	all, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Errorf("directory holds %d files after two writes; want 1 (no temporaries)", len(all))
	}
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("mode of %s = %o; want %o", path, got, want)
	}
}

func TestWriteFileRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		e    Entry
		want string
	}{
		{Entry{Linux: "/v"}, "name must be a plain"},
		{Entry{Name: "a", Linux: "/v"}, "name must be a plain"},
		{Entry{Name: "../a.conf", Linux: "/v"}, "name must be a plain"},
		{Entry{Name: "sub/a.conf", Linux: "/v"}, "name must be a plain"},
		{Entry{Name: ".a.conf", Linux: "/v"}, "name must be a plain"},
		{Entry{Name: "a.conf", Title: "no kernel"}, "no linux, efi or uki"},
		{Entry{Name: "a.conf", Linux: "/v", Title: "x\ny"}, "spans lines"},
	} {
		err := WriteFile(dir, &tc.e)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("WriteFile(%#v) = %v; want error containing %q", tc.e, err, tc.want)
		}
	}
	if all, _ := os.ReadDir(dir); len(all) != 0 {
		t.Errorf("refused writes left %d files behind", len(all))
	}
	if err := WriteFile(filepath.Join(dir, "missing"), &Entry{Name: "a.conf", Linux: "/v"}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("WriteFile into a missing directory = %v; want ErrNotExist", err)
	}
}

// ReadDir reads entries whatever their counter says and puts a bad one last.
func TestReadDirCounted(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"bootc-1.conf":     "title old\nversion 1\nsort-key bootc\nlinux /v1\n",
		"bootc-2+0-3.conf": "title bad\nversion 2\nsort-key bootc\nlinux /v2\n",
	})
	entries, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(entries), []string{"bootc-1.conf", "bootc-2+0-3.conf"}; !slices.Equal(got, want) {
		t.Fatalf("ReadDir order = %v; want %v", got, want)
	}
	if n := entries[1].BootName(); n.ID != "bootc-2" || n.State().String() != "bad" || entries[1].Title != "bad" {
		t.Errorf("bad entry read as %+v, %q", n, entries[1].Title)
	}
}
