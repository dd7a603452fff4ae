package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/status"
	"gobootc.dev/lib/sysroottest"
)

func TestUsrOverlay(t *testing.T) {
	needRoot(t)
	for _, readOnly := range []bool{false, true} {
		name := map[bool]string{false: "read-write", true: "read-only"}[readOnly]
		t.Run(name, func(t *testing.T) {
			h := sysroottest.NewHost(t, nil)
			usr := filepath.Join(t.TempDir(), "usr")
			sysroottest.Files(t, usr, map[string]string{"bin/tool": "original\n"})
			env := []string{"BOOTC_SKIP_CONTAINER_CHECK=1", "BOOTC_SYSROOT=" + h.Root.Phys, "BOOTC_RUN_DIR=" + h.Root.Run, "BOOTC_USR=" + usr}
			args := []string{"usr-overlay"}
			if readOnly {
				args = append(args, "--read-only")
			}
			r := bootc(t, 0, env, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			t.Cleanup(func() { unix.Unmount(usr, unix.MNT_DETACH) })

			err := os.WriteFile(filepath.Join(usr, "bin/tool"), []byte("patched\n"), 0o755)
			if readOnly {
				if !errors.Is(err, unix.EROFS) {
					t.Errorf("write to a read-only overlay: %v", err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				// The change lives in the overlay's upper layer on /run, not in the deployment.
				upper, _ := os.ReadFile(filepath.Join(h.Root.Run, "usr-overlay/upper/bin/tool"))
				if string(upper) != "patched\n" {
					t.Errorf("upper layer has %q", upper)
				}
			}
			hs, err := status.Build(status.Options{Root: h.Root})
			if err != nil {
				t.Fatal(err)
			}
			want := map[bool]string{false: "readWrite", true: "readOnly"}[readOnly]
			if o := hs.Status.UsrOverlay; o == nil || string(o.AccessMode) != want || o.Persistence != "transient" {
				t.Errorf("status usrOverlay = %+v", o)
			}
			oneLineError(t, bootc(t, 0, env, "usr-overlay"), "already has an overlay")
			unix.Unmount(usr, unix.MNT_DETACH)
			if b, _ := os.ReadFile(filepath.Join(usr, "bin/tool")); string(b) != "original\n" {
				t.Errorf("the lower /usr changed: %q", b)
			}
		})
	}
	// Not booted through bootc: refused before anything is mounted.
	r := bootc(t, 0, []string{"BOOTC_SKIP_CONTAINER_CHECK=1", "BOOTC_SYSROOT=" + t.TempDir(), "BOOTC_RUN_DIR=" + t.TempDir(), "BOOTC_USR=" + t.TempDir()}, "usr-overlay")
	if r.code == 0 || !strings.Contains(r.stderr, "booted through bootc") {
		t.Errorf("non-bootc host: %d %s", r.code, r.stderr)
	}
}
