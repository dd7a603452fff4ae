package bootcount

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/renameio/v2"

	"gobootc.dev/lib/envtest"
)

// block builds a block by hand: the header, body, then '#' padding.
func block(body string) []byte {
	b := []byte(envHeader + body)
	return append(b, bytes.Repeat([]byte{'#'}, EnvSize-len(b))...)
}

func mustParse(t *testing.T, data []byte) *Env {
	t.Helper()
	e, err := ParseEnv("grubenv", data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mustMarshal(t *testing.T, e *Env) []byte {
	t.Helper()
	data, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestEnvEmpty(t *testing.T) {
	data := mustMarshal(t, &Env{})
	if !bytes.Equal(data, block("")) {
		t.Errorf("empty block = %q", data)
	}
	if _, ok := mustParse(t, data).Get(VarBootCounter); ok {
		t.Error("empty block has boot_counter")
	}
}

func TestEnvRoundTrip(t *testing.T) {
	const body = "saved_entry=bootc-2\n# a comment GRUB skips\nboot_counter=2\nboot_success=0\nodd=a\\\\b\\\nc\n"
	e := mustParse(t, block(body))
	for name, want := range map[string]string{"saved_entry": "bootc-2", "boot_counter": "2", "boot_success": "0", "odd": "a\\b\nc"} {
		if got, ok := e.Get(name); !ok || got != want {
			t.Errorf("Get(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}
	// Unchanged, the block is written back byte for byte, comment included.
	if got := mustMarshal(t, e); !bytes.Equal(got, block(body)) {
		t.Errorf("rewritten block differs:\n%q\n%q", got, block(body))
	}

	if err := e.SetBootCounter(1); err != nil {
		t.Fatal(err)
	}
	if err := e.SetBootSuccess(true); err != nil {
		t.Fatal(err)
	}
	if err := e.Set("new_var", "x y"); err != nil {
		t.Fatal(err)
	}
	e.Unset("saved_entry")
	want := "# a comment GRUB skips\nboot_counter=1\nboot_success=1\nodd=a\\\\b\\\nc\nnew_var=x y\n"
	if got := mustMarshal(t, e); !bytes.Equal(got, block(want)) {
		t.Errorf("after edits:\n%q\nwant\n%q", got, block(want))
	}
	e.UnsetBootCounter()
	if _, ok, err := e.BootCounter(); ok || err != nil {
		t.Errorf("boot_counter after unset: %v %v", ok, err)
	}
}

// GRUB's load_env reads duplicates in order (the last wins); Set leaves one line.
func TestEnvDuplicates(t *testing.T) {
	e := mustParse(t, block("a=1\nb=2\na=3\n"))
	if v, _ := e.Get("a"); v != "3" {
		t.Errorf("Get(a) = %q, want the last, 3", v)
	}
	if err := e.Set("a", "4"); err != nil {
		t.Fatal(err)
	}
	if got := mustMarshal(t, e); !bytes.Equal(got, block("a=4\nb=2\n")) {
		t.Errorf("after Set: %q", got)
	}
	e = mustParse(t, block("a=1\nb=2\na=3\n"))
	e.Unset("a")
	if got := mustMarshal(t, e); !bytes.Equal(got, block("b=2\n")) {
		t.Errorf("after Unset: %q", got)
	}
}

func TestEnvRefuses(t *testing.T) {
	short := block("")[:EnvSize-1]
	long := append(block(""), '#')
	noNewline := []byte(envHeader + "a=1")
	noNewline = append(noNewline, bytes.Repeat([]byte{'x'}, EnvSize-len(noNewline))...)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", short, "1023 bytes, want 1024"},
		{"long", long, "1025 bytes, want 1024"},
		{"empty", nil, "0 bytes"},
		{"no header", append([]byte("# grub environment block\n"), block("")[len(envHeader):]...), "no \"# GRUB Environment Block\" header"},
		{"header alone in a short file", []byte(envHeader), "25 bytes"},
		{"NUL", block("a=\x00\n"), "NUL byte at offset 27"},
		{"no '='", block("abc\n"), "has no '='"},
		{"empty name", block("=1\n"), "empty name"},
		{"padding", block("a=1\n#x"), "padding holds a byte other than '#'"},
		{"unterminated", noNewline, "runs to the end of the block"},
		{"escaped last newline", block("a=1\\\n"), "runs to the end of the block"},
	} {
		_, err := ParseEnv("/boot/grub/grubenv", tc.data)
		if err == nil {
			t.Errorf("%s: parsed", tc.name)
			continue
		}
		if !errors.Is(err, ErrEnvInvalid) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "/boot/grub/grubenv") {
			t.Errorf("%s: error %q; want ErrEnvInvalid naming the file and %q", tc.name, err, tc.want)
		}
	}
}

func TestEnvSetRefuses(t *testing.T) {
	e := &Env{}
	for _, name := range []string{"", "1abc", "a-b", "a=b", "#c", "a b", "a\nb"} {
		if err := e.Set(name, "1"); !errors.Is(err, ErrEnvInvalid) {
			t.Errorf("Set(%q) = %v; want ErrEnvInvalid", name, err)
		}
	}
	if err := e.Set("a", "x\x00y"); !errors.Is(err, ErrEnvInvalid) {
		t.Errorf("Set with a NUL = %v", err)
	}
	// Fill the block to the last byte: header 25 + "v=" 2 + 996 + "\n" 1 = 1024.
	if err := e.Set("v", strings.Repeat("x", 996)); err != nil {
		t.Fatalf("a value filling the block exactly: %v", err)
	}
	if data := mustMarshal(t, e); len(data) != EnvSize || data[EnvSize-1] != '\n' {
		t.Errorf("full block ends in %q", data[EnvSize-1])
	}
	before := mustMarshal(t, e)
	if err := e.Set("w", ""); !errors.Is(err, ErrEnvFull) {
		t.Errorf("Set beyond the block = %v; want ErrEnvFull", err)
	}
	// An escaped byte takes two.
	if err := e.Set("v", strings.Repeat("\\", 499)); !errors.Is(err, ErrEnvFull) {
		t.Errorf("Set of 499 backslashes = %v; want ErrEnvFull", err)
	}
	if !bytes.Equal(mustMarshal(t, e), before) {
		t.Error("a refused Set changed the block")
	}
}

func TestGreenbootVariables(t *testing.T) {
	for _, tc := range []struct {
		body        string
		counter     int
		counterSet  bool
		good, okSet bool
		wantErr     string
	}{
		{body: ""},
		{body: "boot_counter=3\nboot_success=0\n", counter: 3, counterSet: true, okSet: true},
		{body: "boot_counter=-1\nboot_success=1\n", counter: -1, counterSet: true, good: true, okSet: true},
		{body: "boot_counter=0\n", counter: 0, counterSet: true},
		{body: "boot_counter=-2\n", wantErr: "boot_counter=\"-2\""},
		{body: "boot_counter=+2\n", wantErr: "boot_counter=\"+2\""},
		{body: "boot_counter=two\n", wantErr: "want an integer from -1"},
		{body: "boot_counter=\n", wantErr: "boot_counter=\"\""},
		{body: "boot_counter=99999999999\n", wantErr: "boot_counter"},
		{body: "boot_success=yes\n", wantErr: "want 0 or 1"},
	} {
		e := mustParse(t, block(tc.body))
		n, set, err1 := e.BootCounter()
		good, okSet, err2 := e.BootSuccess()
		err := errors.Join(err1, err2)
		if tc.wantErr != "" {
			if !errors.Is(err, ErrEnvInvalid) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v; want %q", tc.body, err, tc.wantErr)
			}
			continue
		}
		if err != nil || n != tc.counter || set != tc.counterSet || good != tc.good || okSet != tc.okSet {
			t.Errorf("%q: counter %d %v, success %v %v, %v", tc.body, n, set, good, okSet, err)
		}
	}
	e := &Env{}
	for _, n := range []int{-2, MaxCounter + 1} {
		if err := e.SetBootCounter(n); !errors.Is(err, ErrEnvInvalid) {
			t.Errorf("SetBootCounter(%d) = %v", n, err)
		}
	}
}

func TestWriteEnv(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "grubenv")

	e := &Env{}
	if err := e.SetBootCounter(3); err != nil {
		t.Fatal(err)
	}
	// GRUB never creates the block: WriteEnv does.
	if err := WriteEnv(path, e); err != nil {
		t.Fatal(err)
	}
	checkEnvFile(t, path, "boot_counter", "3")
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	back, err := ReadEnv(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := back.SetBootCounter(2); err != nil {
		t.Fatal(err)
	}
	if err := WriteEnv(path, back); err != nil {
		t.Fatal(err)
	}
	checkEnvFile(t, path, "boot_counter", "2")
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Errorf("directory holds %d files; want the block alone", len(des))
	}

	if err := os.WriteFile(path, block("")[:512], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEnv(path); !errors.Is(err, ErrEnvInvalid) || !strings.Contains(err.Error(), "512 bytes") {
		t.Errorf("ReadEnv of a truncated block = %v", err)
	}
	if err := os.WriteFile(path, bytes.Repeat(block(""), 3), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEnv(path); !errors.Is(err, ErrEnvInvalid) || !strings.Contains(err.Error(), "1025 bytes") {
		t.Errorf("ReadEnv of a long file = %v", err)
	}
	if _, err := ReadEnv(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadEnv of a missing file = %v", err)
	}
}

func checkEnvFile(t *testing.T, path, name, want string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != EnvSize || fi.Mode().Perm() != 0o644 {
		t.Errorf("%s: %d bytes, mode %o; want %d bytes, 0644", path, fi.Size(), fi.Mode().Perm(), EnvSize)
	}
	e, err := ReadEnv(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := e.Get(name); got != want {
		t.Errorf("%s: %s=%q, want %q", path, name, got, want)
	}
}

// On a filesystem with no room for a temporary file, an existing block is rewritten in place,
// as GRUB does; a missing one cannot be.
func TestWriteEnvFull(t *testing.T) {
	orig := newPendingFile
	t.Cleanup(func() { newPendingFile = orig })
	newPendingFile = func(string, ...renameio.Option) (*renameio.PendingFile, error) {
		return nil, &os.PathError{Op: "open", Path: "tmp", Err: syscall.ENOSPC}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "grubenv")
	e := &Env{}
	if err := e.SetBootSuccess(true); err != nil {
		t.Fatal(err)
	}
	if err := WriteEnv(path, e); !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("WriteEnv of a new block on a full filesystem = %v", err)
	}
	if err := os.WriteFile(path, block("boot_counter=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteEnv(path, e); err != nil {
		t.Fatal(err)
	}
	checkEnvFile(t, path, "boot_success", "1")
	if _, ok, _ := mustReadEnv(t, path).BootCounter(); ok {
		t.Error("the in-place rewrite kept boot_counter")
	}
	// In place needs the same size: a truncated file is not overwritten.
	if err := os.WriteFile(path, block("")[:512], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteEnv(path, e); !errors.Is(err, ErrEnvInvalid) {
		t.Errorf("in-place write over a 512-byte file = %v", err)
	}
}

func mustReadEnv(t *testing.T, path string) *Env {
	t.Helper()
	e, err := ReadEnv(path)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// GRUB's own tool reads what WriteEnv writes, and WriteEnv's reader takes what the tool writes:
// the blocks are interchangeable, which health checks calling grub2-editenv rely on.
func TestEnvAgainstGrubEditenv(t *testing.T) {
	envtest.NeedTool(t, "grub-editenv")
	dir := t.TempDir()
	theirs := filepath.Join(dir, "theirs")
	editenv := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("grub-editenv", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("grub-editenv %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	editenv(theirs, "create")
	data, err := os.ReadFile(theirs)
	if err != nil {
		t.Fatal(err)
	}
	// Recent GRUBs add a warning comment to a new block; it is kept through a rewrite.
	created := mustParse(t, data)
	if !bytes.Equal(mustMarshal(t, created), data) {
		t.Errorf("grub-editenv's new block %q changed through a rewrite", data)
	}
	if got := editenv(theirs, "list"); got != "" {
		t.Errorf("grub-editenv lists %q in a new block", got)
	}
	editenv(theirs, "set", "boot_counter=3", "boot_success=0", `odd=a\b`)
	e := mustReadEnv(t, theirs)
	if n, ok, err := e.BootCounter(); n != 3 || !ok || err != nil {
		t.Errorf("boot_counter from grub-editenv: %d %v %v", n, ok, err)
	}
	if v, _ := e.Get("odd"); v != `a\b` {
		t.Errorf("odd = %q", v)
	}

	ours := filepath.Join(dir, "ours")
	if err := e.SetBootCounter(-1); err != nil {
		t.Fatal(err)
	}
	if err := e.Set("multi", "line\nbreak"); err != nil {
		t.Fatal(err)
	}
	e.Unset(VarBootSuccess)
	if err := WriteEnv(ours, e); err != nil {
		t.Fatal(err)
	}
	if got, want := editenv(ours, "list"), "boot_counter=-1\nodd=a\\b\nmulti=line\nbreak\n"; got != want {
		t.Errorf("grub-editenv list of our block:\n%q\nwant\n%q", got, want)
	}
	// grub-editenv edits our block in place and we read its edit.
	editenv(ours, "unset", "boot_counter")
	editenv(ours, "set", "boot_success=1")
	e = mustReadEnv(t, ours)
	if _, ok, _ := e.BootCounter(); ok {
		t.Error("boot_counter still set after grub-editenv unset")
	}
	if good, ok, err := e.BootSuccess(); !good || !ok || err != nil {
		t.Errorf("boot_success after grub-editenv set: %v %v %v", good, ok, err)
	}
	if v, _ := e.Get("multi"); v != "line\nbreak" {
		t.Errorf("multi after grub-editenv's rewrite = %q", v)
	}
}
