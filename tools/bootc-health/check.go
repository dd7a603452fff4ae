package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/health"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
)

// check assesses the boot. The order is what later steps rely on: a fallback from a failed
// update is made permanent first, so that whatever the checks find, the failed deployment is no
// longer the default; the login message says the checks run; the checks; the record, in the run
// directory and then with the booted deployment, and the login message with the verdict; then
// the exit status, 1 for RED (the unit fails, and redboot.target runs `red`). The hooks run in
// `bless` and `red`, once the boot's fate is known.
func (c *CLI) check(ctx context.Context, log health.Log, out, errOut io.Writer) error {
	r := c.Layout()
	c.handleFallback(ctx, r, out, errOut)
	note := readFallbackNote(r, errOut)
	plan, err := health.Load(c.Check.Root)
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(errOut, "warning: %s\n", w)
	}
	if err := health.WriteMOTD(c.Check.Root, fallbackMOTD(note)+health.InProgress); err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
	}
	opts := health.Options{Timeout: c.Check.Timeout, Log: log}
	h, err := plan.Assess(ctx, opts)
	if err != nil {
		return err
	}
	c.identify(r, h, errOut)
	if err := record.Write(r.Health(), h); err != nil {
		return err
	}
	if err := health.WriteMOTD(c.Check.Root, fallbackMOTD(note)+health.MOTD(h)); err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
	}
	if err := c.keep(ctx, r, h); err != nil {
		fmt.Fprintf(errOut, "warning: keeping the health record with deployment %s/%s: %v\n", h.Stateroot, h.ID, err)
	}
	if f := h.Failure(); f != nil {
		// The journal and the output have said it in greenboot's words already.
		return &cli.ExitError{Code: cli.ExitFailure, Reported: true,
			Err: fmt.Errorf("boot status is RED: %s failed (%s)", f.Path, health.Reason(*f))}
	}
	return nil
}

// booted names the booted deployment; ok is false on a host not booted through bootc (a
// directory root, a container), which is no error.
func (c *CLI) booted(r layout.Root, errOut io.Writer) (stateroot, id string, ok bool) {
	stateroot, id, err := status.BootedID(r, c.Cmdline)
	if errors.Is(err, record.ErrNotFound) {
		return "", "", false
	}
	if err != nil {
		fmt.Fprintf(errOut, "warning: finding the booted deployment: %v\n", err)
		return "", "", false
	}
	return stateroot, id, true
}

// identify fills in which boot and deployment the record is about.
func (c *CLI) identify(r layout.Root, h *record.Health, errOut io.Writer) {
	if id, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		h.BootID = strings.TrimSpace(string(id))
	}
	stateroot, id, ok := c.booted(r, errOut)
	if !ok {
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
