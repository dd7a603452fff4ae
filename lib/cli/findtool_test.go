package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindTool(t *testing.T) {
	const name = "bootc-findtool-probe"
	tool := func() string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	libexec, path := tool(), tool()

	t.Setenv("PATH", path)
	t.Setenv("BOOTC_LIBEXEC_DIR", libexec)
	if got, err := FindTool(name); err != nil || got != filepath.Join(libexec, name) {
		t.Errorf("with $BOOTC_LIBEXEC_DIR holding it: %q, %v", got, err)
	}

	// Set, it is the only place looked at: a copy on $PATH (or installed on this host) is not used.
	empty := t.TempDir()
	t.Setenv("BOOTC_LIBEXEC_DIR", empty)
	if got, err := FindTool(name); err == nil || !strings.Contains(err.Error(), "not found in $BOOTC_LIBEXEC_DIR ("+empty+")") {
		t.Errorf("with an empty $BOOTC_LIBEXEC_DIR: %q, %v; want not found", got, err)
	}

	os.Unsetenv("BOOTC_LIBEXEC_DIR")
	if got, err := FindTool(name); err != nil || got != filepath.Join(path, name) {
		t.Errorf("without $BOOTC_LIBEXEC_DIR: %q, %v; want the copy on $PATH", got, err)
	}
}
