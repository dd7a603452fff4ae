package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/failpoint"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/mountns"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
)

// ErrNoRollback is returned when there is nothing to roll back to.
var ErrNoRollback = errors.New("No rollback available")

// Run makes the rollback deployment the default at once (or, when it already is, the booted one
// again), discarding a staged deployment. /etc is not merged: each deployment keeps its own.
func (c *RollbackCmd) Run(top *CLI, e *env) error {
	r, err := top.managedRoot()
	if err != nil {
		return err
	}
	if err := mountns.MakeWritable(r.Phys, r.Boot); err != nil {
		return err
	}
	l, err := lock.Acquire(context.Background(), r.Lock(), lock.Options{Operation: "rollback", Wait: time.Minute,
		Notify: func(msg string) { fmt.Fprintln(e.stderr, msg) }})
	if err != nil {
		return err
	}
	defer l.Release()
	st, err := status.Load(status.Options{Root: r, Cmdline: top.Cmdline})
	if err != nil {
		return err
	}
	if st.Booted == nil || st.Rollback == nil {
		return ErrNoRollback
	}
	first, second, next := st.Rollback, st.Booted, "Next boot: rollback deployment"
	if st.RollbackQueued() {
		fmt.Fprintln(e.stdout, "notice: Reverting queued rollback state")
		first, second, next = st.Booted, st.Rollback, "Next boot: current deployment"
	}
	set := bootloader.FromRecords(st.EntryOrder(first, second))
	if c.Trial && first != st.Booted {
		var note string
		set[0].Tries, note = bootloader.TrialTries(r, first.Stateroot, first.ID)
		fmt.Fprintln(e.stdout, note)
	}
	cfg, err := record.ReadBootConfig(r)
	if err != nil {
		return err
	}
	failpoint.Hit("rollback:unstage")
	// A staged deployment would replace the rollback at shutdown: rolling back discards it.
	if st.Staged != nil {
		if err := record.Remove(r.Staged()); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Discarded staged deployment %s/%s\n", st.Staged.Stateroot, st.Staged.ID)
	}
	if err := bootloader.WriteSet(r.Boot, set, bootloader.OptionsFor(cfg, failpoint.Prefixed("bootloader"))); err != nil {
		return fmt.Errorf("writing boot entries: %w", err)
	}
	failpoint.Hit("rollback:done")
	if err := record.StatusChanged(r); err != nil {
		return err
	}
	writeRebootRequired(first.Image.ManifestDigest)
	journal.Send(journal.Rollback, journal.Info, fmt.Sprintf("Rollback: next boot %s/%s (%s)", first.Stateroot, first.ID, first.Image.ManifestDigest),
		map[string]string{"DEPLOYMENT": first.ID})
	fmt.Fprintln(e.stdout, next)
	if c.Apply {
		return reboot()
	}
	return nil
}
