package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
)

// handleFallback makes a fallback permanent when the boot loader gave up on a newer deployment
// and booted this one. Failing to do so is reported and does not stop the checks: the host runs
// the deployment that was good before, and the next boot finds the fallback again.
func (c *CLI) handleFallback(ctx context.Context, r layout.Root, out, errOut io.Writer) {
	stateroot, id, ok := c.booted(r, errOut)
	if !ok {
		return
	}
	st, err := c.state(stateroot, id)
	if err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
		return
	}
	if st.Fallback == nil {
		return
	}
	if err := c.write(ctx, r, out, func() error { return c.fallback(ctx, out) }, "fallback"); err != nil {
		f := st.Fallback.Failed
		msg := fmt.Sprintf("FALLBACK BOOT DETECTED! The boot loader gave up on %s/%s, but making that permanent failed: %v",
			f.Stateroot, f.ID, err)
		if jerr := journal.Report(errOut, journal.BootFallback, journal.Err, msg, map[string]string{"DEPLOYMENT": f.ID}); jerr != nil {
			fmt.Fprintf(errOut, "warning: %v\n", jerr)
		}
	}
}

// fallback is the hidden command that makes a fallback permanent, under the writer lock: the
// failed image is recorded (so that updates do not stage it again), and the entries are written
// again with the booted deployment first and nothing on trial, which also clears grubenv's
// trial. The failed deployment stays as the rollback only when no other deployment is left.
func (c *CLI) fallback(ctx context.Context, out io.Writer) error {
	r := c.Layout()
	l, err := writable(ctx, r, "fallback", out)
	if err != nil {
		return err
	}
	defer l.Release()
	st, err := status.Load(status.Options{Root: r, Cmdline: c.Cmdline})
	if err != nil {
		return err
	}
	if st.Booted == nil {
		return errors.New("no booted deployment")
	}
	a, err := c.state(st.Booted.Stateroot, st.Booted.ID)
	if err != nil {
		return err
	}
	if a.Fallback == nil {
		return nil // another run made it permanent meanwhile
	}
	fb := a.Fallback
	fi, err := fb.Record(r, time.Now())
	if err != nil {
		return err
	}
	if err := record.AddFailedImage(r, fi.Stateroot, fi); err != nil {
		return err
	}
	set := fallbackSet(st, fb.Failed)
	cfg, err := record.ReadBootConfig(r)
	if err != nil {
		return err
	}
	if err := bootloader.WriteSet(r.Boot, bootloader.FromRecords(set), bootloader.OptionsFor(cfg, nil)); err != nil {
		return fmt.Errorf("writing boot entries: %w", err)
	}
	if err := record.StatusChanged(r); err != nil {
		return err
	}
	if err := record.Write(r.HealthFallback(), &fi); err != nil {
		return err
	}
	booted := layout.DeploymentKargValue(st.Booted.Stateroot, st.Booted.ID)
	msg := fmt.Sprintf("FALLBACK BOOT DETECTED! Default bootc deployment has been rolled back: %s/%s (%s) %s; %s boots from now on.",
		fi.Stateroot, fi.ID, fi.ManifestDigest, fi.Reason, booted)
	fields := map[string]string{"DEPLOYMENT": fi.ID, "IMAGE": fi.Image, "BOOTC_MANIFEST_DIGEST": fi.ManifestDigest}
	if fi.Check != "" {
		fields["BOOTC_HEALTH_CHECK"] = fi.Check
	}
	return journal.Report(out, journal.BootFallback, journal.Err, msg, fields)
}

// fallbackSet is the entry set after a fallback: the booted deployment, then every other one the
// entries listed and the pinned ones, then the failed one only if it is pinned or nothing else
// is left (it is still a deployment that boots, better than no rollback at all).
func fallbackSet(st *status.State, failed bootloader.Deployment) []*record.Deployment {
	set := []*record.Deployment{st.Booted.Deployment}
	listed := map[*status.Deployment]bool{st.Booted: true}
	var bad *status.Deployment
	for _, d := range append(append([]*status.Deployment{}, st.BootOrder...), st.Others...) {
		switch {
		case listed[d]:
		case d.Stateroot == failed.Stateroot && d.ID == failed.ID:
			bad = d
		case d.Entry != "" || d.Pinned:
			set = append(set, d.Deployment)
		}
		listed[d] = true
	}
	if bad != nil && (bad.Pinned || len(set) == 1) {
		set = append(set, bad.Deployment)
	}
	return set
}

// readFallbackNote returns this boot's fallback, nil when there was none.
func readFallbackNote(r layout.Root, errOut io.Writer) *record.FailedImage {
	fi := &record.FailedImage{}
	err := record.ReadJSON(r.HealthFallback(), fi)
	if errors.Is(err, record.ErrNotFound) {
		return nil
	}
	if err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
		return nil
	}
	return fi
}

// fallbackMOTD is the login message's paragraph about this boot's fallback, "" without one.
func fallbackMOTD(fi *record.FailedImage) string {
	if fi == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("FALLBACK BOOT DETECTED! Default bootc deployment has been rolled back.\n")
	image := fi.ManifestDigest
	if fi.Image != "" {
		image = fi.Image + "@" + fi.ManifestDigest
	}
	fmt.Fprintf(&b, "Deployment %s/%s (%s) %s.\n", fi.Stateroot, fi.ID, image, fi.Reason)
	if len(fi.LastLines) > 0 {
		b.WriteString("Last lines of its output:\n")
		for _, l := range fi.LastLines {
			b.WriteString("    " + l + "\n")
		}
	}
	b.WriteString("Updates will not stage this image again unless asked to (bootc upgrade --allow-failed).\n\n")
	return b.String()
}
