// Package cleanup collects what a change of the deployment set left unneeded: first the
// deployments no longer kept, with their images, layers and boot files (package gc), then the
// logically bound images that no kept deployment declares (the bootc-bound-images step tool).
//
// Both stage (after it replaced a deployment) and the boot-time cleanup after a finalize run
// this same collection, under the writer lock they hold.
package cleanup

import (
	"context"
	"fmt"
	"io"

	"gobootc.dev/lib/boundimage"
	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/gc"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
)

// BoundImagesTool is the step tool that removes the bound images no kept deployment declares.
const BoundImagesTool = "bootc-bound-images"

// Options say which root to collect and where the output goes.
type Options struct {
	Root layout.Root
	// Cmdline is the kernel command line file consulted when no booted marker exists ("" for
	// the marker only; the bound images step then falls back to its own default).
	Cmdline string
	// Lock is the writer lock the caller holds; the bound images step shares it.
	Lock *lock.Lock
	// Out receives the summary lines and the step tool's output, ErrOut the tool's errors.
	Out, ErrOut io.Writer
}

// Result is what each half of the collection did.
type Result struct {
	// GC is what the deployment collection removed; nil when it failed before removing anything.
	GC *gc.Result
	// GCErr is the deployment collection's failure.
	GCErr error
	// BoundImagesRan says bootc's bound image storage held images, so the step tool ran.
	BoundImagesRan bool
	// BoundImagesErr is the bound image collection's failure.
	BoundImagesErr error
}

// Err is the collection's failure as one line, or nil when both halves succeeded.
func (r *Result) Err() error {
	switch {
	case r.GCErr != nil && r.BoundImagesErr != nil:
		return fmt.Errorf("%w; %w", r.GCErr, r.BoundImagesErr)
	case r.GCErr != nil:
		return r.GCErr
	}
	return r.BoundImagesErr
}

// Run collects the deployments, then the bound images, and prints a summary line for each.
// The bound images are collected even when the deployment collection failed: the tool decides
// which deployments are kept from the records on its own, so a partial removal cannot make it
// drop an image a remaining deployment declares. Failures are in the result, for the caller to
// decide whether they fail the command.
func Run(ctx context.Context, o Options) *Result {
	res := &Result{}
	g, err := gc.Run(ctx, gc.Options{Root: o.Root, Cmdline: o.Cmdline})
	res.GC, res.GCErr = g, err
	if err == nil {
		summarize(o, g)
	}
	res.BoundImagesRan, res.BoundImagesErr = boundImages(ctx, o)
	return res
}

// summarize prints the deployment collection's summary. One that removed something is also a
// journal event; journal.Report keeps it from appearing there twice when the output is the
// journal too (bootc-cleanup.service, the update services).
func summarize(o Options, g *gc.Result) {
	if g.Empty() {
		fmt.Fprintln(o.Out, g.Summary())
		return
	}
	if err := journal.Report(o.Out, journal.Cleanup, journal.Info, g.Summary(), nil); err != nil {
		fmt.Fprintf(o.ErrOut, "warning: %v\n", err)
	}
}

// boundImages runs `bootc-bound-images gc` under the caller's lock. A storage holding no image
// has nothing to collect, so the tool (and the podman service it starts) is not run at all.
func boundImages(ctx context.Context, o Options) (bool, error) {
	has, err := boundimage.HasImages(o.Root.BoundStorage())
	if err != nil {
		return false, fmt.Errorf("collecting bound images: %w", err)
	}
	if !has {
		fmt.Fprintln(o.Out, "Bound images: nothing to remove.")
		return false, nil
	}
	args := []string{"--sysroot", o.Root.Phys}
	if o.Cmdline != "" {
		args = append(args, "--cmdline", o.Cmdline)
	}
	cmd, err := cli.StepCommand(ctx, BoundImagesTool, append(args, "gc")...)
	if err != nil {
		return false, fmt.Errorf("collecting bound images: %w", err)
	}
	cmd.Env = append(cmd.Env, "BOOTC_RUN_DIR="+o.Root.Run)
	cmd.Stdout, cmd.Stderr = o.Out, o.ErrOut
	if err := cli.RunStep(cmd, o.Lock); err != nil {
		return true, fmt.Errorf("collecting bound images: %w", err)
	}
	return true, nil
}
