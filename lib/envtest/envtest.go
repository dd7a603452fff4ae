// Package envtest lets a test say what it needs from the host (root, a program, a kernel
// feature): outside CI a test that lacks it is skipped, naming what is missing; under CI (CI=true,
// or BOOTC_REQUIRE_ALL=1 as .ci/run sets) it fails instead, so a green run never hides a test that
// did not run.
//
// Naming: a package whose name ends in "test" is test support; only _test.go files and other
// test-support packages import it, which `make vet` checks.
package envtest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// Strict reports whether a missing requirement fails the test rather than skipping it.
func Strict() bool {
	return isTrue(os.Getenv("CI")) || isTrue(os.Getenv("BOOTC_REQUIRE_ALL"))
}

func isTrue(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

// Missing ends the test because the host lacks what format and args describe: a skip, or under
// CI a failure.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	what := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("required under CI: %s", what)
		return
	}
	t.Skip(what)
}

// NeedRoot ends the test, as Missing does, unless it runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		Missing(t, "root: the test runs as uid %d", uid)
	}
}

// NeedTool ends the test, as Missing does, unless every named program is on $PATH.
func NeedTool(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			missing = append(missing, n)
		}
	}
	switch len(missing) {
	case 0:
	case 1:
		Missing(t, "%s is not installed (scripts/deps.sh installs it)", missing[0])
	default:
		Missing(t, "%s are not installed (scripts/deps.sh installs them)", strings.Join(missing, ", "))
	}
}
