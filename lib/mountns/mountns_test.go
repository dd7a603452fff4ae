package mountns

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/blockdev"
	"gobootc.dev/lib/envtest"
)

const childEnv = "MOUNTNS_TEST_WRITE"

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		// A writer: make the read-only mount writable, then write through it.
		if err := MakeWritable(dir); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(2)
		}
		if err := os.WriteFile(filepath.Join(dir, "written"), []byte("ok"), 0o644); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestMakeWritable(t *testing.T) {
	envtest.NeedRoot(t)
	dir := t.TempDir()
	// A read-only bind mount, like /sysroot on a booted host.
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		envtest.Missing(t, "a bind mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Fatalf("write to the read-only mount: %v", err)
	}
	m, err := blockdev.At(dir)
	if err != nil || m == nil || !m.ReadOnly() {
		t.Fatalf("blockdev.At(%s) = %+v, %v", dir, m, err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writer: %v\n%s", err, out)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "written")); err != nil || string(data) != "ok" {
		t.Errorf("the writer's file: %q, %v", data, err)
	}
	// The writer's namespace did not leak: here the mount is still read-only.
	if m, _ := blockdev.At(dir); m == nil || !m.ReadOnly() {
		t.Errorf("mount became writable outside the writer: %+v", m)
	}
	if err := os.WriteFile(filepath.Join(dir, "y"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write after the writer ran: %v", err)
	}
}

func TestPlainDirectoryNeedsNothing(t *testing.T) {
	dir := t.TempDir()
	if err := MakeWritable(dir, filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
}
