package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"gobootc.dev/lib/layout"
)

func links(t *testing.T, out string) []string {
	var got []string
	filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			rel, _ := filepath.Rel(out, p)
			got = append(got, rel+" -> "+target)
		}
		return nil
	})
	sort.Strings(got)
	return got
}

func TestGenerate(t *testing.T) {
	cases := []struct {
		name                    string
		booted, failed, cleanup bool
		want                    []string
	}{
		{"not bootc", false, false, false, nil},
		{"not bootc, cleanup pending", false, false, true, nil},
		{"booted", true, false, false, []string{
			"multi-user.target.wants/bootc-status-updated-onboot.target -> /u/bootc-status-updated-onboot.target",
			"multi-user.target.wants/bootc-status-updated.path -> /u/bootc-status-updated.path",
		}},
		{"booted after a failed finalize", true, true, false, []string{
			"multi-user.target.wants/bootc-finalize-failure.service -> /u/bootc-finalize-failure.service",
			"multi-user.target.wants/bootc-status-updated-onboot.target -> /u/bootc-status-updated-onboot.target",
			"multi-user.target.wants/bootc-status-updated.path -> /u/bootc-status-updated.path",
		}},
		{"booted after a finalize", true, false, true, []string{
			"multi-user.target.wants/bootc-cleanup.service -> /u/bootc-cleanup.service",
			"multi-user.target.wants/bootc-status-updated-onboot.target -> /u/bootc-status-updated-onboot.target",
			"multi-user.target.wants/bootc-status-updated.path -> /u/bootc-status-updated.path",
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			r := layout.New(filepath.Join(dir, "sysroot"), filepath.Join(dir, "run"))
			os.MkdirAll(r.Run, 0o755)
			os.MkdirAll(r.Bootc(), 0o700)
			if c.booted {
				os.WriteFile(r.Booted(), []byte(`{"version":1,"stateroot":"default","id":"a.0"}`), 0o644)
			}
			if c.failed {
				os.WriteFile(r.FinalizeFailure(), []byte(`{}`), 0o644)
			}
			if c.cleanup {
				os.WriteFile(r.CleanupPending(), []byte(`{}`), 0o644)
			}
			out := filepath.Join(dir, "out")
			for i := 0; i < 2; i++ { // repeatable
				if err := generate(r, "/u", out); err != nil {
					t.Fatal(err)
				}
			}
			if got := links(t, out); strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("links:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
}
