// Package mountns makes the read-only physical root writable for one writer process, in a
// private mount namespace, so the booted host never sees /sysroot writable.
package mountns

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/blockdev"
)

// envUnshared marks a process that already runs in its own mount namespace.
const envUnshared = "BOOTC_UNSHARED"

// readOnlyMounts returns the paths that are read-only mount points.
func readOnlyMounts(paths []string) ([]string, error) {
	var ro []string
	for _, p := range paths {
		m, err := blockdev.At(p)
		if err != nil {
			return nil, err
		}
		if m != nil && m.ReadOnly() {
			ro = append(ro, p)
		}
	}
	return ro, nil
}

// MakeWritable ensures every path that is a read-only mount point (the physical root, a
// separate /boot) is writable for this process only. The first time it is needed it re-executes
// the program in a new mount namespace (Go cannot move a running multi-threaded process into
// one) and does not return; in that namespace it remounts the points read-write. Paths that are
// plain directories (tests, pipelines on an image directory) need nothing.
func MakeWritable(paths ...string) error {
	ro, err := readOnlyMounts(paths)
	if err != nil || len(ro) == 0 {
		return err
	}
	if os.Getenv(envUnshared) != "1" {
		return reexec()
	}
	for _, p := range ro {
		// A bind remount changes only this namespace's copy of the mount point's flag; the
		// filesystem itself stays read-write underneath for /etc and /var.
		if err := unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("making %s writable: %w", p, err)
		}
	}
	return nil
}

// reexec runs this program again in a private mount namespace and exits with its status.
func reexec() error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program to run it in a private mount namespace: %w", err)
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), envUnshared+"=1")
	cmd.ExtraFiles = inheritedFiles()
	// The Go runtime also makes the new namespace's mounts private, so nothing propagates back.
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("running in a private mount namespace: %w", err)
	}
	os.Exit(0)
	return nil
}

// inheritedFiles passes the descriptors this process inherited (3 and up, without close-on-exec:
// a handed-down lock, a progress fd) to the re-run at the same numbers; nil closes a gap.
func inheritedFiles() []*os.File {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var files []*os.File
	for _, e := range entries {
		var fd int
		if _, err := fmt.Sscanf(e.Name(), "%d", &fd); err != nil || fd < 3 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		for len(files) < fd-3 {
			files = append(files, nil)
		}
		files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("fd%d", fd)))
	}
	return files
}

// Private makes sure this process runs in a mount namespace of its own, re-executing it in one
// if need be (and then not returning), so that what it mounts is seen by nobody else and goes
// away when it exits.
func Private() error {
	if os.Getenv(envUnshared) == "1" {
		return nil
	}
	return reexec()
}
