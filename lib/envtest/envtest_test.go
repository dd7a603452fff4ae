package envtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands in for the test: it keeps what Missing asked of it instead of ending it.
type recorder struct {
	testing.TB
	skipped, failed []string
}

func (r *recorder) Helper() {}

func (r *recorder) Skip(args ...any) { r.skipped = append(r.skipped, fmt.Sprint(args...)) }

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = append(r.failed, fmt.Sprintf(format, args...))
}

// env sets the two variables that decide strictness; "" leaves one unset.
func env(t *testing.T, ci, requireAll string) {
	for k, v := range map[string]string{"CI": ci, "BOOTC_REQUIRE_ALL": requireAll} {
		t.Setenv(k, v)
		if v == "" {
			os.Unsetenv(k)
		}
	}
}

func TestMissing(t *testing.T) {
	for _, c := range []struct {
		ci, requireAll string
		strict         bool
	}{
		{"", "", false},
		{"false", "0", false},
		{"true", "", true},
		{"1", "", true},
		{"", "1", true},
		{"false", "1", true},
	} {
		t.Run(fmt.Sprintf("CI=%q,BOOTC_REQUIRE_ALL=%q", c.ci, c.requireAll), func(t *testing.T) {
			env(t, c.ci, c.requireAll)
			if Strict() != c.strict {
				t.Fatalf("Strict() = %v, want %v", Strict(), c.strict)
			}
			r := &recorder{}
			Missing(r, "%s is not installed", "mkfs.xfs")
			if c.strict {
				if len(r.skipped) != 0 || len(r.failed) != 1 || r.failed[0] != "required under CI: mkfs.xfs is not installed" {
					t.Errorf("under CI: skipped %q, failed %q; want one failure naming mkfs.xfs", r.skipped, r.failed)
				}
			} else if len(r.failed) != 0 || len(r.skipped) != 1 || r.skipped[0] != "mkfs.xfs is not installed" {
				t.Errorf("outside CI: skipped %q, failed %q; want one skip naming mkfs.xfs", r.skipped, r.failed)
			}
		})
	}
}

func TestNeedTool(t *testing.T) {
	env(t, "", "")
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "present"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)

	r := &recorder{}
	NeedTool(r, "present")
	if len(r.skipped)+len(r.failed) != 0 {
		t.Errorf("a program on $PATH ended the test: skipped %q, failed %q", r.skipped, r.failed)
	}

	r = &recorder{}
	NeedTool(r, "absent-a", "present", "absent-b")
	if len(r.skipped) != 1 || r.skipped[0] != "absent-a, absent-b are not installed (scripts/deps.sh installs them)" {
		t.Errorf("skipped %q, want one skip naming both missing programs", r.skipped)
	}

	env(t, "true", "")
	r = &recorder{}
	NeedTool(r, "absent-a")
	if len(r.failed) != 1 || !strings.Contains(r.failed[0], "required under CI: absent-a is not installed") {
		t.Errorf("under CI: failed %q, want a failure naming absent-a", r.failed)
	}
}

func TestNeedRoot(t *testing.T) {
	env(t, "", "")
	r := &recorder{}
	NeedRoot(r)
	if root := os.Geteuid() == 0; root != (len(r.skipped) == 0) {
		t.Errorf("as uid %d: skipped %q", os.Geteuid(), r.skipped)
	}
}
