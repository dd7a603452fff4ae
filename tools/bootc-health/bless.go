package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/health"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// Actions of a record's assessment: what came of the verdict.
const (
	// ActionBlessed: the boot was GREEN and reached boot-complete.target; a trial ended there.
	ActionBlessed = "blessed"
	// ActionReboot: the boot was RED on trial; the host rebooted for the next try or the fallback.
	ActionReboot = "reboot"
	// ActionStayUp: the boot was RED with nothing a reboot could change; the host stayed up.
	ActionStayUp = "stay-up"
)

// bless runs after boot-complete.target: the boot is good. A deployment on trial is blessed
// (systemd-bless-boot may have renamed its entry already; GRUB's trial ends here), the record
// says so, and then the green.d hooks run.
func (c *CLI) bless(ctx context.Context, log health.Log, out, errOut io.Writer) error {
	r := c.Layout()
	plan, err := health.Load(c.Bless.Root)
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(errOut, "warning: %s\n", w)
	}
	h := c.readRecord(r, record.Green, errOut)
	if h.Verdict != record.Green {
		return fmt.Errorf("the boot is %s (%s): not blessing it", h.Verdict, r.Health())
	}
	trial := false
	if h.ID != "" {
		st, err := c.state(h.Stateroot, h.ID)
		switch {
		case err != nil:
			fmt.Fprintf(errOut, "warning: %v\n", err)
		case st.CountedBoot || st.Booted != nil && st.Booted.Counter.Counted:
			trial = true
		}
		failed, err := record.LookupFailedImage(r, h.Stateroot, h.ManifestDigest)
		if err != nil {
			fmt.Fprintf(errOut, "warning: %v\n", err)
		}
		if trial || failed != nil {
			if err := c.write(ctx, r, out, func() error { return c.blessEntry(ctx, out) }, "bless-entry"); err != nil {
				return fmt.Errorf("blessing deployment %s/%s: %w", h.Stateroot, h.ID, err)
			}
		}
	}
	if trial {
		// Said whether this run or systemd-bless-boot renamed the entry: the trial is over.
		msg := fmt.Sprintf("Blessed deployment %s/%s (%s): it passed its trial; the boot loader counts no more tries for it.",
			h.Stateroot, h.ID, h.ManifestDigest)
		if err := journal.Report(out, journal.BootBlessed, journal.Notice, msg,
			map[string]string{"DEPLOYMENT": h.ID, "BOOTC_MANIFEST_DIGEST": h.ManifestDigest}); err != nil {
			fmt.Fprintf(errOut, "warning: %v\n", err)
		}
	}
	h.Assessment = &record.HealthAssessment{Action: ActionBlessed, Time: time.Now().UTC()}
	if err := record.Write(r.Health(), h); err != nil {
		return err
	}
	motd := fallbackMOTD(readFallbackNote(r, errOut)) + health.MOTD(h)
	if trial {
		motd += fmt.Sprintf("Deployment %s/%s passed its trial: the boot loader counts no more tries for it.\n", h.Stateroot, h.ID)
	}
	if err := health.WriteMOTD(c.Bless.Root, motd); err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
	}
	if err := c.keep(ctx, r, h); err != nil {
		fmt.Fprintf(errOut, "warning: keeping the health record with deployment %s/%s: %v\n", h.Stateroot, h.ID, err)
	}
	env := []string{"BOOTC_HEALTH_VERDICT=" + string(record.Green), "BOOTC_HEALTH_RECORD=" + r.Health()}
	_, err = plan.RunHooks(ctx, record.Green, env, health.Options{Timeout: c.Bless.Timeout, Log: log})
	return err
}

// blessEntry is the hidden command that ends the booted deployment's trial under the writer
// lock: its entry loses the counter and grubenv's trial ends (bootloader.Bless). An image that
// failed before and has now booted well is no longer refused by updates.
func (c *CLI) blessEntry(ctx context.Context, out io.Writer) error {
	r := c.Layout()
	l, err := writable(ctx, r, "bless", out)
	if err != nil {
		return err
	}
	defer l.Release()
	stateroot, id, ok := c.booted(r, out)
	if !ok {
		return errors.New("no booted deployment")
	}
	d, err := record.ReadDeployment(r, stateroot, id)
	if err != nil {
		return err
	}
	changed, err := bootloader.Bless(r.Boot, stateroot, id)
	if err != nil {
		return err
	}
	if changed {
		if err := record.StatusChanged(r); err != nil {
			return err
		}
	}
	key := layout.DeploymentKargValue(stateroot, id)
	removed, err := record.RemoveFailedImage(r, stateroot, d.Image.ManifestDigest)
	if err != nil {
		return err
	}
	if removed {
		fmt.Fprintf(out, "Image %s booted well in %s; updates may stage it again.\n", d.Image.ManifestDigest, key)
	}
	return nil
}

// readRecord returns this boot's health record. Without one (no checks ran this boot: the unit
// was skipped, or the boot failed in a unit before them) it is a new record of verdict for the
// booted deployment.
func (c *CLI) readRecord(r layout.Root, verdict record.Verdict, errOut io.Writer) *record.Health {
	h, err := record.ReadHealth(r.Health())
	if err == nil {
		return h
	}
	if !errors.Is(err, record.ErrNotFound) {
		fmt.Fprintf(errOut, "warning: %v\n", err)
	}
	now := time.Now().UTC()
	h = &record.Health{Version: record.FormatVersion, Verdict: verdict, Started: now, Finished: now, Checks: []record.HealthCheck{}}
	c.identify(r, h, errOut)
	return h
}
