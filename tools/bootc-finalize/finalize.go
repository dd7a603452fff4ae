package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/etcmerge"
	"gobootc.dev/lib/failpoint"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/mountns"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
)

// CLI is the command line. Without flags it finalizes; the unit on the next boot reports a
// failure with --report-failure, and an operator clears it with --acknowledge.
type CLI struct {
	cli.Root
	Cmdline       string        `help:"Kernel command line to read the booted deployment from." default:"/proc/cmdline" env:"BOOTC_CMDLINE" hidden:""`
	ReportFailure bool          `help:"Report the failure a previous finalize left, and fail while it is there." xor:"mode"`
	Acknowledge   bool          `help:"Forget the failure a previous finalize left." xor:"mode"`
	LockWait      time.Duration `help:"How long to wait for another bootc operation." default:"2m" hidden:""`
}

// Run does what the flags ask.
func (c *CLI) Run(ctx context.Context, out io.Writer) error {
	r := c.Layout()
	switch {
	case c.ReportFailure:
		return reportFailure(r)
	case c.Acknowledge:
		if err := mountns.MakeWritable(r.Phys); err != nil {
			return err
		}
		return record.Remove(r.FinalizeFailure())
	}
	staged, err := record.ReadStaged(r)
	if errors.Is(err, record.ErrNotFound) {
		fmt.Fprintln(out, "No staged deployment; nothing to finalize.")
		return nil
	}
	if err != nil {
		return err
	}
	if staged.DownloadOnly {
		fmt.Fprintf(out, "Staged deployment %s/%s is download-only; not applying it.\n", staged.Stateroot, staged.ID)
		return nil
	}
	if err := mountns.MakeWritable(r.Phys, r.Boot); err != nil {
		return err
	}
	l, err := lock.Acquire(ctx, r.Lock(), lock.Options{Operation: "finalize", Wait: c.LockWait,
		Notify: func(msg string) { fmt.Fprintln(out, msg) }})
	if err != nil {
		return err
	}
	defer l.Release()
	if err := c.finalize(r, out); err != nil {
		// Leave the reason for the next boot; the boot entries are still the old, complete set
		// (or the new one, if the failure came after the switch).
		stamp := &record.FinalizeFailure{Version: record.FormatVersion, Time: time.Now().UTC(),
			Stateroot: staged.Stateroot, ID: staged.ID, Error: err.Error()}
		if werr := record.Write(r.FinalizeFailure(), stamp); werr != nil {
			err = errors.Join(err, werr)
		}
		journal.Send(journal.FinalizeFailed, journal.Err, "finalizing "+staged.ID+" failed: "+err.Error(), nil)
		return fmt.Errorf("finalizing %s/%s: %w", staged.Stateroot, staged.ID, err)
	}
	return nil
}

// finalize merges /etc and switches the boot entries. Each step can be repeated: a crash at any
// point leaves a host that boots its previous deployment, and running again completes the work.
func (c *CLI) finalize(r layout.Root, out io.Writer) error {
	st, err := status.Load(status.Options{Root: r, Cmdline: c.Cmdline})
	if err != nil {
		return err
	}
	if st.Staged == nil {
		return fmt.Errorf("staged record names no deployment")
	}
	if st.Booted == nil {
		return fmt.Errorf("no booted deployment: finalize runs on a host booted through bootc")
	}
	failpoint.Hit("finalize:etc")
	plan, err := mergeEtc(r, st.Booted.Deployment, st.Staged.Deployment)
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintln(out, "etc merge:", w)
	}
	fmt.Fprintf(out, "Merged /etc: %s\n", plan.Summary())

	failpoint.Hit("finalize:entries")
	set := []bootloader.Deployment{bootloader.FromRecord(r, st.Staged.Deployment), bootloader.FromRecord(r, st.Booted.Deployment)}
	for _, d := range st.Others {
		if d.Pinned {
			set = append(set, bootloader.FromRecord(r, d.Deployment))
		}
	}
	cfg, err := record.ReadBootConfig(r)
	if err != nil {
		return err
	}
	if err := bootloader.WriteSet(r.Boot, set, bootloader.OptionsFor(cfg, failpoint.Prefixed("bootloader"))); err != nil {
		return fmt.Errorf("writing boot entries: %w", err)
	}

	failpoint.Hit("finalize:done")
	// The switch is done: the rest only tidies up, and a crash here loses nothing.
	if err := record.Remove(r.Staged()); err != nil {
		return err
	}
	if err := record.Remove(r.FinalizeFailure()); err != nil {
		return err
	}
	if err := record.StatusChanged(r); err != nil {
		return err
	}
	journal.Send(journal.Finalize, journal.Info, fmt.Sprintf("Finalized deployment %s/%s (%s)",
		st.Staged.Stateroot, st.Staged.ID, st.Staged.Image.ManifestDigest),
		map[string]string{"DEPLOYMENT": st.Staged.ID, "IMAGE": st.Staged.Image.Ref.Image})
	fmt.Fprintf(out, "Next boot: %s/%s\n", st.Staged.Stateroot, st.Staged.ID)
	return nil
}

// mergeEtc builds the staged deployment's writable /etc: pristine is the booted deployment's
// image /etc, current its live /etc, new the staged image's /etc. A merge left by an earlier,
// interrupted run is discarded: the live /etc may have changed since.
func mergeEtc(r layout.Root, booted, staged *record.Deployment) (*etcmerge.MergePlan, error) {
	out := r.Etc(staged.Stateroot, staged.ID)
	if err := os.RemoveAll(out); err != nil {
		return nil, fmt.Errorf("removing an earlier merge: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	return etcmerge.Merge(
		filepath.Join(r.Deployment(booted.Stateroot, booted.ID), "usr/etc"),
		r.Etc(booted.Stateroot, booted.ID),
		filepath.Join(r.Deployment(staged.Stateroot, staged.ID), "usr/etc"),
		out)
}

// reportFailure makes the failure visible on the boot after it: the unit fails, and the journal
// says why, until someone acknowledges it.
func reportFailure(r layout.Root) error {
	f := &record.FinalizeFailure{}
	err := record.Read(r.FinalizeFailure(), f)
	if errors.Is(err, record.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("finalizing deployment %s/%s at %s failed: %s (the previous deployment was kept; run bootc-finalize --acknowledge to clear)",
		f.Stateroot, f.ID, f.Time.Format(time.RFC3339), f.Error)
	journal.Send(journal.FinalizeFailed, journal.Err, msg, map[string]string{"DEPLOYMENT": f.ID})
	return errors.New(msg)
}
