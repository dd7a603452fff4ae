package efivar

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadString(t *testing.T) {
	dir := t.TempDir()
	write := func(data []byte) {
		if err := os.WriteFile(Path(dir, LoaderInfo), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// "sd é" in UTF-16LE with its NUL, after the attributes.
	write([]byte{6, 0, 0, 0, 's', 0, 'd', 0, ' ', 0, 0xe9, 0, 0, 0})
	if v, ok, err := ReadString(dir, LoaderInfo); v != "sd é" || !ok || err != nil {
		t.Errorf("ReadString = %q, %v, %v", v, ok, err)
	}
	write(Encode(`\loader\entries\x+1-1.conf`))
	if v, ok, err := ReadString(dir, LoaderInfo); v != `\loader\entries\x+1-1.conf` || !ok || err != nil {
		t.Errorf("ReadString of Encode = %q, %v, %v", v, ok, err)
	}
	write([]byte{6, 0, 0})
	if _, _, err := ReadString(dir, LoaderInfo); err == nil {
		t.Error("a truncated variable read")
	}
	if _, ok, err := ReadString(filepath.Join(dir, "none"), LoaderInfo); ok || err != nil {
		t.Errorf("no EFI: %v, %v", ok, err)
	}
}

func TestDir(t *testing.T) {
	t.Setenv(EnvDir, "")
	if got := Dir(""); got != DefaultDir {
		t.Errorf("Dir() = %q", got)
	}
	t.Setenv(EnvDir, "/tmp/x")
	if got := Dir(""); got != "/tmp/x" {
		t.Errorf("Dir() with %s = %q", EnvDir, got)
	}
	if got := Dir("/given"); got != "/given" {
		t.Errorf("Dir(given) = %q", got)
	}
}
