package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"gobootc.dev/lib/blockdev"
	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/mountns"
	"gobootc.dev/lib/record"
)

// lockWait is how long the writers here wait for another bootc operation: at boot that is
// bootc-cleanup.service, which may take minutes on a slow disk.
const lockWait = 15 * time.Minute

// write runs the hidden command args, which writes the physical root or /boot. On a booted host
// both are read-only mounts, and making them writable takes a private mount namespace, which the
// checks and hooks must not run in (mounts the host makes meanwhile would not reach them): a
// child process does the write there, its output going to out. Where nothing is read-only (a
// test's root, a pipeline's directory) run does it in this process.
func (c *CLI) write(ctx context.Context, r layout.Root, out io.Writer, run func() error, args ...string) error {
	ro := false
	for _, p := range []string{r.Phys, r.Boot} {
		m, err := blockdev.At(p)
		if err != nil {
			return err
		}
		ro = ro || m != nil && m.ReadOnly()
	}
	if !ro {
		return run()
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(cli.DisplayEnv(os.Environ(), ""), "BOOTC_SYSROOT="+r.Phys, "BOOTC_RUN_DIR="+r.Run,
		"BOOTC_CMDLINE="+c.Cmdline, "BOOTC_EFIVARS_DIR="+c.EFIVars)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// writable makes the physical root and /boot writable for this process and takes the writer
// lock, as every bootc writer does.
func writable(ctx context.Context, r layout.Root, op string, out io.Writer) (*lock.Lock, error) {
	if err := mountns.MakeWritable(r.Phys, r.Boot); err != nil {
		return nil, err
	}
	return lock.Acquire(ctx, r.Lock(), lock.Options{Operation: op, Wait: lockWait,
		Notify: func(msg string) { fmt.Fprintln(out, msg) }})
}

// keep copies this boot's record to the booted deployment's state, for the boots after this one
// (a fallback boot reads why the deployment failed there).
func (c *CLI) keep(ctx context.Context, r layout.Root, h *record.Health) error {
	if h.ID == "" || !r.IsDeployed() {
		return nil
	}
	return c.write(ctx, r, io.Discard, func() error { return persist(r) }, "persist")
}

// persist copies this boot's record to the state of the deployment it names.
func persist(r layout.Root) error {
	h, err := record.ReadHealth(r.Health())
	if err != nil {
		return err
	}
	if h.ID == "" {
		return fmt.Errorf("%s names no deployment", r.Health())
	}
	if err := mountns.MakeWritable(r.Phys); err != nil {
		return err
	}
	// The deployment must still be there: writing for a removed one would bring back its
	// state directory.
	if _, err := record.ReadDeployment(r, h.Stateroot, h.ID); err != nil {
		return err
	}
	return record.Write(r.DeploymentHealth(h.Stateroot, h.ID), h)
}
