package durable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	if err := Close(f); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("more"); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after Close: %v, want os.ErrClosed", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "data" {
		t.Errorf("content %q, %v", data, err)
	}
	// A second Close reports the failure and names the file.
	if err := Close(f); !errors.Is(err, os.ErrClosed) || !strings.Contains(fmt.Sprint(err), path) {
		t.Errorf("Close of a closed file: %v", err)
	}
}

func TestSync(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, file} {
		if err := Sync(p); err != nil {
			t.Errorf("Sync(%s): %v", p, err)
		}
	}
	if err := Sync(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Sync of a missing path: %v", err)
	}
}

func TestSyncFS(t *testing.T) {
	dir := t.TempDir()
	if err := SyncFS(dir); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := SyncFS(file); !errors.Is(err, syscall.ENOTDIR) || !strings.Contains(fmt.Sprint(err), file) {
		t.Errorf("SyncFS of a file: %v, want ENOTDIR naming it", err)
	}
}
