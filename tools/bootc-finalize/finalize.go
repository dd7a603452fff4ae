package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/cleanup"
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

// CLI is the command line. Without flags it finalizes; on the next boot, the units report a
// failure with --report-failure and remove what a successful finalize left unneeded with
// --cleanup; an operator clears a failure with --acknowledge.
type CLI struct {
	cli.Root
	Cmdline       string        `help:"Kernel command line to read the booted deployment from." default:"/proc/cmdline" env:"BOOTC_CMDLINE" hidden:""`
	ReportFailure bool          `help:"Report the failure a previous finalize left, and fail while it is there." xor:"mode"`
	Acknowledge   bool          `help:"Forget the failure a previous finalize left." xor:"mode"`
	Cleanup       bool          `help:"Remove the deployments and bound images the last finalize left unneeded (run at boot)." xor:"mode"`
	LockWait      time.Duration `help:"How long to wait for another bootc operation." default:"2m" hidden:""`
}

// Run does what the flags ask.
func (c *CLI) Run(ctx context.Context, out, errOut io.Writer) error {
	r := c.Layout()
	switch {
	case c.ReportFailure:
		return reportFailure(r)
	case c.Acknowledge:
		if err := mountns.MakeWritable(r.Phys); err != nil {
			return err
		}
		return record.Remove(r.FinalizeFailure())
	case c.Cleanup:
		return c.cleanup(ctx, r, out, errOut)
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
	if st.Staged.Stateroot == st.Booted.Stateroot {
		plan, err := mergeEtc(r, st.Booted.Deployment, st.Staged.Deployment)
		if err != nil {
			return err
		}
		for _, w := range plan.Warnings {
			fmt.Fprintln(out, "etc merge:", w)
		}
		fmt.Fprintf(out, "Merged /etc: %s\n", plan.Summary())
	} else {
		if err := freshEtc(r, st.Booted.Deployment, st.Staged.Deployment); err != nil {
			return err
		}
		fmt.Fprintf(out, "New stateroot %s: /etc is the image's, with the boot partitions' mounts\n", st.Staged.Stateroot)
	}

	failpoint.Hit("finalize:entries")
	set := bootloader.FromRecords(st.EntryOrder(st.Staged, st.Booted))
	cfg, err := record.ReadBootConfig(r)
	if err != nil {
		return err
	}
	// The trial starts here, when the entry becomes the default, and not at stage: a counter
	// armed earlier would count down the old, good entry if the machine went down before the
	// switch.
	if len(set) > 1 {
		var note string
		set[0].Tries, note = bootloader.TrialTries(r, st.Staged.Stateroot, st.Staged.ID)
		fmt.Fprintln(out, note)
	}
	if err := bootloader.WriteSet(r.Boot, set, bootloader.OptionsFor(cfg, failpoint.Prefixed("bootloader"))); err != nil {
		return fmt.Errorf("writing boot entries: %w", err)
	}
	// The deployments the new set dropped are removed on the next boot (bootc-cleanup.service),
	// not here: shutdown is no time for lengthy removals. A marker that cannot be written only
	// delays that to the next upgrade, which is no reason to report the switch as failed.
	if err := writeCleanupPending(r, st.Staged.Deployment); err != nil {
		fmt.Fprintf(out, "warning: %v\n", err)
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
		r.PristineEtc(booted.Stateroot, booted.ID),
		r.Etc(booted.Stateroot, booted.ID),
		r.PristineEtc(staged.Stateroot, staged.ID),
		out)
}

// freshEtc builds the /etc of a deployment in another stateroot (a factory reset): the image's,
// plus the booted /etc/fstab lines that mount the boot partitions where bootc's tools write the
// boot entries (install wrote them; without them no later update could switch entries).
func freshEtc(r layout.Root, booted, staged *record.Deployment) error {
	out := r.Etc(staged.Stateroot, staged.ID)
	if err := os.RemoveAll(out); err != nil {
		return fmt.Errorf("removing an earlier /etc: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	pristine := r.PristineEtc(staged.Stateroot, staged.ID)
	if _, err := etcmerge.Merge(pristine, pristine, pristine, out); err != nil {
		return fmt.Errorf("copying the image's /etc: %w", err)
	}
	old, err := os.ReadFile(filepath.Join(r.Etc(booted.Stateroot, booted.ID), "fstab"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := bootMounts(string(old))
	if lines == "" {
		return nil
	}
	fstab := filepath.Join(out, "fstab")
	cur, err := os.ReadFile(fstab)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(cur) > 0 && !strings.HasSuffix(string(cur), "\n") {
		cur = append(cur, '\n')
	}
	return renameio.WriteFile(fstab, append(cur, lines...), 0o644)
}

// bootMounts are the lines of an fstab that mount the boot partitions.
func bootMounts(fstab string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(fstab, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && !strings.HasPrefix(f[0], "#") && slices.Contains([]string{"/boot", "/sysroot/boot", "/boot/efi", "/efi"}, f[1]) {
			b.WriteString(strings.TrimSuffix(line, "\n") + "\n")
		}
	}
	return b.String()
}

// cleanupPending is the content of layout.CleanupPending. Only its presence matters; the rest
// says where it came from, for a person looking at it.
type cleanupPending struct {
	Version   int       `json:"version"`
	Time      time.Time `json:"time"`
	Stateroot string    `json:"stateroot"`
	ID        string    `json:"id"` // the deployment the finalize made the default
}

func writeCleanupPending(r layout.Root, d *record.Deployment) error {
	m := &cleanupPending{Version: record.FormatVersion, Time: time.Now().UTC(), Stateroot: d.Stateroot, ID: d.ID}
	if err := record.Write(r.CleanupPending(), m); err != nil {
		return fmt.Errorf("recording the cleanup pending for the next boot: %w", err)
	}
	return nil
}

// cleanup runs at boot after a finalize: it collects the deployments the new boot entries no
// longer name and the bound images only they declared, as a stage would, and removes the
// pending marker once that succeeded. On failure the marker stays, so the next boot tries again.
func (c *CLI) cleanup(ctx context.Context, r layout.Root, out, errOut io.Writer) error {
	if !r.IsDeployed() {
		return fmt.Errorf("%s holds no bootc state (%s)", r.Phys, r.Bootc())
	}
	if err := mountns.MakeWritable(r.Phys, r.Boot); err != nil {
		return err
	}
	l, err := lock.Acquire(ctx, r.Lock(), lock.Options{Operation: "cleanup", Wait: c.LockWait,
		Notify: func(msg string) { fmt.Fprintln(errOut, msg) }})
	if err != nil {
		return err
	}
	defer l.Release()
	res := cleanup.Run(ctx, cleanup.Options{Root: r, Cmdline: c.Cmdline, Lock: l, Out: out, ErrOut: errOut})
	if err := res.Err(); err != nil {
		return fmt.Errorf("cleaning up after the last finalize (%s kept for the next boot): %w", r.CleanupPending(), err)
	}
	return record.Remove(r.CleanupPending())
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
