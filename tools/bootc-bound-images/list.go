package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"gobootc.dev/lib/boundimage"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
)

// Row is one image of `list`, in upstream bootc's JSON shape.
type Row struct {
	Type  string `json:"image_type"` // "host" or "logical"
	Image string `json:"image"`
	// Retained: `bootc switch --retain` keeps this host image until `bootc image unretain`.
	Retained bool `json:"retained,omitempty"`
}

// list prints the host images (those bootc fetched into its store) and the logical ones (the
// bound images the booted deployment declares). It reads files only: no lock, no podman.
func (c *CLI) list(out io.Writer) error {
	r := c.Layout()
	var rows []Row
	if c.List.Type != "logical" {
		host, err := hostImages(r)
		if err != nil {
			return err
		}
		rows = append(rows, host...)
	}
	if c.List.Type != "host" {
		root, err := c.listRoot(r)
		if err != nil {
			return err
		}
		decl, err := boundimage.Read(root)
		if err != nil {
			return err
		}
		for _, d := range decl {
			rows = append(rows, Row{Type: "logical", Image: d.Image})
		}
	}
	if c.List.Format == "json" {
		if rows == nil {
			rows = []Row{}
		}
		data, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", data)
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTYPE")
	for _, row := range rows {
		typ := row.Type
		if row.Retained {
			typ += " (retained)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", row.Image, typ)
	}
	return tw.Flush()
}

// listRoot is the root whose declarations are the logical images: --root, else the booted
// deployment, else / (a container build, a host not booted through bootc).
func (c *CLI) listRoot(r layout.Root) (string, error) {
	if c.List.Root != "" {
		return c.List.Root, nil
	}
	st, err := status.Load(status.Options{Root: r, Cmdline: c.Cmdline})
	if err != nil {
		return "", fmt.Errorf("reading the deployments: %w", err)
	}
	if st.Booted != nil {
		return r.Deployment(st.Booted.Stateroot, st.Booted.ID), nil
	}
	return "/", nil
}

// hostImages lists the OS images bootc holds: each under the name a deployment of it tracks
// (as status shows it), or, for an image no deployment uses yet (a cached or downloaded update),
// under the reference it was fetched from.
func hostImages(r layout.Root) ([]Row, error) {
	names := map[string]string{} // manifest digest → name
	deployments, err := record.ListDeployments(r)
	if err != nil {
		return nil, fmt.Errorf("listing host images: %w", err)
	}
	for _, d := range deployments {
		names[d.Image.ManifestDigest] = imageName(d.Image)
	}
	entries, err := os.ReadDir(r.Images())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("listing host images: %w", err)
	}
	for _, e := range entries {
		dg, ok := strings.CutPrefix(e.Name(), "sha256-")
		if !e.IsDir() || !ok || names["sha256:"+dg] != "" {
			continue
		}
		f, err := record.ReadFetchedImage(r, "sha256:"+dg)
		if errors.Is(err, record.ErrNotFound) {
			continue // an interrupted fetch
		}
		if err != nil {
			return nil, err
		}
		names[f.Image.ManifestDigest] = imageName(f.Image)
	}
	retained, err := record.RetainedDigests(r)
	if err != nil {
		return nil, err
	}
	// One row per name, and a retained image on a row of its own: the host may track another
	// image under the same name.
	seen := map[Row]bool{}
	var rows []Row
	for dg, name := range names {
		row := Row{Type: "host", Image: name, Retained: retained[dg]}
		if !seen[row] {
			seen[row] = true
			rows = append(rows, row)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Image != rows[j].Image {
			return rows[i].Image < rows[j].Image
		}
		return !rows[i].Retained
	})
	return rows, nil
}

// imageName is an image's reference with its transport, registry images bare.
func imageName(im record.Image) string {
	switch {
	case im.Ref.Image == "":
		return im.ManifestDigest
	case im.Ref.Transport != "" && im.Ref.Transport != host.TransportRegistry:
		return im.Ref.Transport + ":" + im.Ref.Image
	}
	return im.Ref.Image
}
