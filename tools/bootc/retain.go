package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"gobootc.dev/lib/cleanup"
	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/mountns"
	"gobootc.dev/lib/record"
)

// Run lets go of retained images and collects them at once. Every name must be retained in
// some stateroot; otherwise nothing changes.
func (c *ImageUnretainCmd) Run(top *CLI, e *env) error {
	if c.All == (len(c.Images) > 0) {
		return &cli.ExitError{Code: cli.ExitUsage, Err: errors.New("name the retained images to let go, or pass --all")}
	}
	r, err := top.managedRoot()
	if err != nil {
		return err
	}
	if err := mountns.MakeWritable(r.Phys, r.Boot); err != nil {
		return err
	}
	l, err := lock.Acquire(context.Background(), r.Lock(), lock.Options{Operation: "image unretain", Wait: time.Minute,
		Notify: func(msg string) { fmt.Fprintln(e.stderr, msg) }})
	if err != nil {
		return err
	}
	defer l.Release()
	stateroots, err := record.Stateroots(r)
	if err != nil {
		return err
	}
	match := func(img record.RetainedImage) bool {
		return c.All || slices.Contains(c.Images, img.Image) || slices.Contains(c.Images, img.ManifestDigest)
	}
	found := map[string]bool{}
	for _, sr := range stateroots {
		ri, err := record.ReadRetainedImages(r, sr)
		if err != nil {
			return err
		}
		for _, img := range ri.Images {
			if match(img) {
				found[img.Image], found[img.ManifestDigest] = true, true
			}
		}
	}
	for _, name := range c.Images {
		if !found[name] {
			return fmt.Errorf("%s is not a retained image (bootc image list shows them)", name)
		}
	}
	for _, sr := range stateroots {
		gone, err := record.Unretain(r, sr, match)
		if err != nil {
			return err
		}
		for _, img := range gone {
			fmt.Fprintf(e.stdout, "Let go of %s (%s)\n", img.Image, img.ManifestDigest)
		}
	}
	res := cleanup.Run(context.Background(), cleanup.Options{Root: r, Cmdline: top.Cmdline, Lock: l, Out: e.stdout, ErrOut: e.stderr})
	return res.Err()
}
