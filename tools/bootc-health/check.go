package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"gobootc.dev/lib/blockdev"
	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/health"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/mountns"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
)

// check assesses the boot. The order is what hooks and later steps rely on: the login message
// says the checks run; the checks; the record, in the run directory and then with the booted
// deployment, and the login message with the verdict; then the hooks, which find the record in
// place (BOOTC_HEALTH_RECORD); then the exit status, 1 for RED.
func (c *CLI) check(ctx context.Context, log health.Log, out, errOut io.Writer) error {
	plan, err := health.Load(c.Check.Root)
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(errOut, "warning: %s\n", w)
	}
	if err := health.WriteMOTD(c.Check.Root, health.InProgress); err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
	}
	opts := health.Options{Timeout: c.Check.Timeout, Log: log}
	h, err := plan.Assess(ctx, opts)
	if err != nil {
		return err
	}
	r := c.Layout()
	c.identify(r, h, errOut)
	if err := record.Write(r.Health(), h); err != nil {
		return err
	}
	if err := health.WriteMOTD(c.Check.Root, health.MOTD(h)); err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
	}
	if err := keep(ctx, r, h); err != nil {
		fmt.Fprintf(errOut, "warning: keeping the health record with deployment %s/%s: %v\n", h.Stateroot, h.ID, err)
	}
	env := []string{"BOOTC_HEALTH_VERDICT=" + string(h.Verdict), "BOOTC_HEALTH_RECORD=" + r.Health()}
	if _, err := plan.RunHooks(ctx, h.Verdict, env, opts); err != nil {
		return err
	}
	if f := h.Failure(); f != nil {
		// The journal and the output have said it in greenboot's words already.
		return &cli.ExitError{Code: cli.ExitFailure, Reported: true,
			Err: fmt.Errorf("boot status is RED: %s failed (%s)", f.Path, health.Reason(*f))}
	}
	return nil
}

// identify fills in which boot and deployment the record is about. A host not booted through
// bootc (a directory root, a container) has no deployment to name, which is no error.
func (c *CLI) identify(r layout.Root, h *record.Health, errOut io.Writer) {
	if id, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.BootID = strings.TrimSpace(string(id))
	}
	stateroot, id, err := status.BootedID(r, c.Cmdline)
	if errors.Is(err, record.ErrNotFound) {
		return
	}
	if err != nil {
		fmt.Fprintf(errOut, "warning: finding the booted deployment: %v\n", err)
		return
	}
	h.Stateroot, h.ID = stateroot, id
	d, err := record.ReadDeployment(r, stateroot, id)
	if err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
		return
	}
	h.ManifestDigest = d.Image.ManifestDigest
}

// keep copies the record to the booted deployment's state, for the boots after this one. On a
// booted host the physical root is read-only and writing it takes a private mount namespace,
// which the checks must not run in (mounts the host makes meanwhile would not reach them): a
// child process does the write there.
func keep(ctx context.Context, r layout.Root, h *record.Health) error {
	if h.ID == "" || !r.IsDeployed() {
		return nil
	}
	m, err := blockdev.At(r.Phys)
	if err != nil {
		return err
	}
	if m == nil || !m.ReadOnly() {
		return persist(r)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, "persist")
	cmd.Env = append(cli.DisplayEnv(os.Environ(), ""), "BOOTC_SYSROOT="+r.Phys, "BOOTC_RUN_DIR="+r.Run)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
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
