package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"syscall"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/deploy"
	"gobootc.dev/lib/layout"
)

// env is what verbs need from the outside world.
type env struct {
	stdout, stderr io.Writer
}

// exec replaces this process with the step tool, so its exit code, output and terminal handling
// are the user's directly; it shows display, the words the user typed, as its name.
func (e *env) exec(tool, display string, args, environ []string) error {
	path, err := cli.FindTool(tool)
	if err != nil {
		return err
	}
	argv := append([]string{tool}, args...)
	if err := syscall.Exec(path, argv, cli.DisplayEnv(environ, display)); err != nil {
		return fmt.Errorf("running %s: %w", path, err)
	}
	return nil // not reached
}

// inContainer tells whether we run inside a container rather than on a booted host: podman and
// systemd-nspawn set $container for PID 1 and its children, podman and docker leave marker files.
// BOOTC_SKIP_CONTAINER_CHECK=1 is for test harnesses that run as root inside a container and point
// the tools at a test root.
func inContainer() bool {
	if os.Getenv("BOOTC_SKIP_CONTAINER_CHECK") == "1" {
		return false
	}
	if os.Getenv("container") != "" {
		return true
	}
	for _, p := range []string{"/run/.containerenv", "/.dockerenv"} {
		if _, err := os.Stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return true
		}
	}
	return false
}

// requireRoot refuses to start a privileged verb as another user, before anything is touched.
// Errors are printed after the verb ("bootc upgrade: error: …"), so they need not name it.
func requireRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("must be run as root")
	}
	return nil
}

// requireHost refuses verbs that change a booted host when run in a container or unprivileged.
func requireHost() error {
	if inContainer() {
		return errors.New("detected a container; this command requires a booted host system")
	}
	return requireRoot()
}

// writeRebootRequired tells reboot coordinators (kured and similar) a reboot is pending; it is
// advisory, so a failure to write it does not fail the operation.
func writeRebootRequired(digest string) {
	path := os.Getenv("BOOTC_REBOOT_REQUIRED")
	if path == "" {
		path = deploy.DefaultRebootRequired
	}
	deploy.WriteRebootRequired(path, digest)
}

// reboot asks systemd to reboot; --apply verbs end here.
func reboot() error {
	cmd := exec.Command("systemctl", "reboot", "--message=Initiated by bootc")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("rebooting: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// managedRoot is the root a verb that changes the host works on: refused in a container, as
// another user than root, and on a system bootc does not manage.
func (c *CLI) managedRoot() (layout.Root, error) {
	r := c.Layout()
	if err := requireHost(); err != nil {
		return r, err
	}
	if !r.IsDeployed() {
		return r, fmt.Errorf("this system is not deployed via bootc (no %s)", r.Bootc())
	}
	return r, nil
}
