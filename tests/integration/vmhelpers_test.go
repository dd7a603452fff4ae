package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gobootc.dev/tests/integration/vm"
)

// requireVMTests skips unless BOOTC_VM_TESTS=1: a VM test under TCG takes minutes and needs
// root, podman, mmdebstrap and QEMU.
func requireVMTests(t *testing.T) {
	t.Helper()
	if os.Getenv("BOOTC_VM_TESTS") != "1" {
		// An opt-in, not a missing requirement: a plain skip even under CI, whose `make check`
		// runs these through `make e2e`, which sets BOOTC_VM_TESTS=1.
		t.Skip("VM test: set BOOTC_VM_TESTS=1 to run it (minutes under TCG; root, podman, mmdebstrap, qemu)")
	}
	if os.Getuid() != 0 {
		t.Fatal("VM tests need root (podman image mount, mkfs)")
	}
	for _, tool := range []string{"qemu-system-x86_64", "podman", "mmdebstrap", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("VM tests need %s (run scripts/deps.sh)", tool)
		}
	}
}

// artifactsDir is where a VM test keeps its serial logs and QEMU command lines:
// $BOOTC_TEST_ARTIFACTS/<test name> (kept), or a temporary directory kept only on failure.
func artifactsDir(t *testing.T) string {
	t.Helper()
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	if base := os.Getenv("BOOTC_TEST_ARTIFACTS"); base != "" {
		dir := filepath.Join(base, name)
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Logf("artifacts in %s", dir)
		return dir
	}
	dir, err := os.MkdirTemp("", name+"-artifacts-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("artifacts kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// repoRoot is the checkout's top directory (this package lives at tests/integration).
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

var sampleOnce sync.Map // tag → error, so a test binary builds the sample images once

// sampleImage builds (or reuses from cache) localhost/bootc-sample:<tag> with images/build.sh.
func sampleImage(t *testing.T, tag string) string {
	t.Helper()
	ref := "localhost/bootc-sample:" + tag
	v, _ := sampleOnce.LoadOrStore(tag, new(sync.Once))
	var err error
	v.(*sync.Once).Do(func() {
		start := time.Now()
		cmd := exec.Command(filepath.Join(repoRoot(t), "images/build.sh"), tag)
		out, e := cmd.CombinedOutput()
		if e != nil {
			err = fmt.Errorf("images/build.sh %s: %v\n%s", tag, e, out)
			return
		}
		t.Logf("images/build.sh %s took %s:\n%s", tag, time.Since(start).Round(time.Second), strings.TrimSpace(string(out)))
	})
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// run runs a host command and fails the test with its output if it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// guest wraps a booted VM with test helpers that fail the test on harness errors.
type guest struct {
	t  *testing.T
	vm *vm.VM
}

// sh runs a shell script in the guest and returns stdout, stderr and the exit code.
func (g guest) sh(script string) (stdout, stderr string, code int) {
	g.t.Helper()
	r, err := g.vm.Shell(context.Background(), script)
	if err != nil {
		g.t.Fatalf("guest: %s: %v", script, err)
	}
	return string(r.Stdout), string(r.Stderr), r.ExitCode
}

// mustSh runs a script that must succeed and returns its stdout.
func (g guest) mustSh(script string) string {
	g.t.Helper()
	out, errOut, code := g.sh(script)
	if code != 0 {
		g.t.Fatalf("guest: %s: exit %d\nstdout: %s\nstderr: %s", script, code, out, errOut)
	}
	return out
}
