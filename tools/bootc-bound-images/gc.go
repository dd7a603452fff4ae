package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/containers/podman/v5/pkg/bindings/images"

	"gobootc.dev/lib/boundimage"
	"gobootc.dev/lib/gc"
	"gobootc.dev/lib/layout"
)

// gc removes every image of bootc's storage that no kept deployment declares. Kept are the
// deployments the deployment collection keeps (gc.Kept), so an image stays exactly as long as a
// deployment binding it. Step order: lock; decide the declared images from the records and
// deployment roots (a declaration that cannot be read aborts before anything is removed); start
// the service; resolve each declared reference to an image id there; remove the other images.
func (c *CLI) gc(ctx context.Context, out, errOut io.Writer) error {
	r, l, err := c.writer(ctx, "bound-images gc", errOut)
	if err != nil {
		return err
	}
	defer l.Release()
	declared, err := keptImages(r, c.Cmdline)
	if err != nil {
		return err
	}
	present, err := boundimage.HasImages(r.BoundStorage())
	if err != nil {
		return err
	}
	if !present {
		fmt.Fprintln(out, "Bound images: nothing to remove.")
		return nil
	}
	svc, err := startService(ctx, serviceOptions{Podman: c.Podman, Root: r.BoundStorage(), Private: true, Env: serviceEnv("")})
	if err != nil {
		return err
	}
	defer svc.Stop()

	keep := map[string]bool{}
	for _, ref := range declared {
		ok, err := images.Exists(svc.Conn, ref, nil)
		if err != nil {
			return fmt.Errorf("bound image %s: %w", ref, err)
		}
		if !ok {
			continue
		}
		info, err := images.GetImage(svc.Conn, ref, nil)
		if err != nil {
			return fmt.Errorf("bound image %s: %w", ref, err)
		}
		keep[info.ID] = true
	}
	list, err := images.List(svc.Conn, new(images.ListOptions).WithAll(true))
	if err != nil {
		return fmt.Errorf("listing bootc's images: %w", err)
	}
	var remove []string
	names := map[string][]string{}
	for _, im := range list {
		if !keep[im.ID] {
			remove = append(remove, im.ID)
			names[im.ID] = im.Names
		}
	}
	sort.Strings(remove)
	verb := "Removed"
	if c.GC.DryRun {
		verb = "Would remove"
	} else if len(remove) > 0 {
		// Forced: an image with several names is refused otherwise. Nothing runs from this
		// storage (containers using it as an additional store live in their own).
		_, errs := images.Remove(svc.Conn, remove, new(images.RemoveOptions).WithForce(true))
		if len(errs) > 0 {
			return fmt.Errorf("removing bound images: %w", oneLine(errors.Join(errs...)))
		}
	}
	for _, id := range remove {
		fmt.Fprintf(out, "%s bound image %s %v\n", verb, shortID(id), names[id])
	}
	fmt.Fprintf(out, "Bound images: %d kept, %d %s.\n", len(list)-len(remove), len(remove), map[bool]string{true: "to remove", false: "removed"}[c.GC.DryRun])
	return nil
}

// keptImages are the references the kept deployments declare.
func keptImages(r layout.Root, cmdline string) ([]string, error) {
	kept, err := gc.Kept(r, cmdline)
	if err != nil {
		return nil, fmt.Errorf("reading the deployments: %w", err)
	}
	var refs []string
	for _, d := range kept {
		decl, err := boundimage.Read(r.Deployment(d.Stateroot, d.ID))
		if err != nil {
			return nil, fmt.Errorf("deployment %s/%s: %w", d.Stateroot, d.ID, err)
		}
		for _, im := range decl {
			refs = append(refs, im.Image)
		}
	}
	return refs, nil
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
