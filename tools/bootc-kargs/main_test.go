package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// root makes an image root whose kargs.d holds the given files (nil: no kargs.d at all).
func root(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	if files == nil {
		return dir
	}
	kd := filepath.Join(dir, "usr/lib/bootc/kargs.d")
	if err := os.MkdirAll(kd, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(kd, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRun(t *testing.T) {
	v1 := root(t, map[string]string{"10-console.toml": `kargs = ["console=ttyS0", "quiet"]`})
	v2 := root(t, map[string]string{
		"10-console.toml": `kargs = ["console=ttyS0"]`,
		"20-arm.toml":     "kargs = [\"arm-only\"]\nmatch-architectures = [\"aarch64\"]",
		"30-new.toml":     `kargs = ["mitigations=auto,nosmt"]`,
	})
	bad := root(t, map[string]string{"10-bad.toml": `kargs = ["x"]` + "\nextra = 1"})
	noDir := root(t, nil)
	cases := []struct {
		name         string
		cli          CLI
		stdin        string
		want, errHas string
	}{
		{"upgrade keeps local args", CLI{OldRoot: v1, NewRoot: v2, Current: "root=UUID=1 console=ttyS0 quiet my.local=1", Arch: "x86_64"}, "",
			"root=UUID=1 console=ttyS0 my.local=1 mitigations=auto,nosmt", ""},
		{"first install", CLI{NewRoot: v2, Current: "root=UUID=1", Arch: "aarch64"}, "",
			"root=UUID=1 console=ttyS0 arm-only mitigations=auto,nosmt", ""},
		{"from stdin", CLI{OldRoot: v1, NewRoot: v1, CurrentFile: "-", Arch: "x86_64"}, "a \"b=c d\" quiet\n",
			"a \"b=c d\" quiet", ""},
		{"image without kargs.d", CLI{OldRoot: v1, NewRoot: noDir, Current: "console=ttyS0 quiet x", Arch: "x86_64"}, "",
			"console=ttyS0 quiet x", ""},
		{"unknown key", CLI{NewRoot: bad, Current: "x", Arch: "x86_64"}, "", "", "10-bad.toml"},
		{"bad arch", CLI{NewRoot: v2, Current: "x", Arch: "amd64"}, "", "", "amd64"},
		{"unterminated quote", CLI{NewRoot: v2, Current: `a="b`, Arch: "x86_64"}, "", "", "current command line"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out bytes.Buffer
			err := c.cli.Run(context.Background(), strings.NewReader(c.stdin), &out)
			if c.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), c.errHas) {
					t.Fatalf("error %v, want one naming %q", err, c.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSuffix(out.String(), "\n"); got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}
