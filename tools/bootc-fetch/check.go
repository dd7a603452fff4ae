package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"go.podman.io/image/v5/manifest"

	"gobootc.dev/lib/imgref"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// The pending manifest and config of a cached update sit beside its record, in the stateroot's
// state directory, so that --check never touches images/ or the store.
//
// --check runs without the writer lock: it only replaces these three files, each atomically,
// the record last. Two concurrent checks of the same image write the same content; a reader
// that wants the pending manifest or config checks it against the digests in the record.
func cachedManifestPath(root layout.Root, stateroot string) string {
	return strings.TrimSuffix(root.CachedUpdate(stateroot), ".json") + ".manifest.json"
}

func cachedConfigPath(root layout.Root, stateroot string) string {
	return strings.TrimSuffix(root.CachedUpdate(stateroot), ".json") + ".config.json"
}

// check reports whether the target differs from the booted image and caches the pending update.
func (c *CLI) check(root layout.Root, tgt *target, res *resolved, configRaw []byte, cfg *imageConfig, rec record.Image, out io.Writer) error {
	changed := !sameDigest(tgt.booted, res.digest)
	tracked := tgt.booted != nil && sameSource(tgt)
	if c.Result != "" {
		r := Result{ManifestDigest: res.digest.String(), Version: rec.Version,
			Changed:       changed && !sameDigest(tgt.staged, res.digest),
			AlreadyStaged: sameDigest(tgt.staged, res.digest)}
		if err := record.WriteResult(c.Result, r); err != nil {
			return err
		}
	}
	if !changed {
		if tracked {
			for _, p := range []string{root.CachedUpdate(tgt.stateroot), cachedManifestPath(root, tgt.stateroot), cachedConfigPath(root, tgt.stateroot)} {
				if err := record.Remove(p); err != nil {
					return fmt.Errorf("removing the cached update: %w", err)
				}
			}
		}
		fmt.Fprintf(out, "No changes in: %s\n", tgt.ref)
		return nil
	}
	fmt.Fprintf(out, "Update available for: %s\n", tgt.ref)
	if rec.Version != "" {
		fmt.Fprintf(out, "  Version: %s\n", rec.Version)
	}
	fmt.Fprintf(out, "  Digest: %s\n", res.digest)
	diff := diffLayers(root, tgt.booted, res, cfg)
	fmt.Fprintf(out, "Total new layers: %-4d Size: %s\n", diff.newCount, humanBytes(diff.newBytes))
	if tgt.booted != nil {
		if diff.removedKnown {
			fmt.Fprintf(out, "Removed layers:   %-4d Size: %s\n", diff.removedCount, humanBytes(diff.removedBytes))
		} else {
			fmt.Fprintf(out, "Removed layers:   %d\n", diff.removedCount)
		}
	}
	if !tracked {
		return nil
	}
	st := tgt.stateroot
	if err := os.MkdirAll(root.State(st), 0o700); err != nil {
		return fmt.Errorf("caching the update: %w", err)
	}
	if err := renameio.WriteFile(cachedManifestPath(root, st), res.raw, 0o644); err != nil {
		return fmt.Errorf("caching the update: %w", err)
	}
	if err := renameio.WriteFile(cachedConfigPath(root, st), configRaw, 0o644); err != nil {
		return fmt.Errorf("caching the update: %w", err)
	}
	cu := &record.CachedUpdate{Version: record.FormatVersion, Image: rec, CheckedAt: time.Now().UTC()}
	if err := record.Write(root.CachedUpdate(st), cu); err != nil {
		return fmt.Errorf("caching the update: %w", err)
	}
	return nil
}

// sameSource reports whether the target is the image the booted deployment tracks: only then is
// the result its cached update.
func sameSource(tgt *target) bool {
	b := tgt.booted.Image.Ref
	return b.Transport == tgt.ref.Transport.String() && canonical(b.Transport, b.Image) == tgt.ref.Canonical()
}

func canonical(transport, image string) string {
	r, err := imgref.Parse(transport, image)
	if err != nil {
		return image
	}
	return r.Canonical()
}

// layerDiff compares the target's layers with the booted image's, by diff ID.
type layerDiff struct {
	newCount, removedCount int
	newBytes, removedBytes int64
	removedKnown           bool // the booted image's manifest was stored, so sizes are known
}

func diffLayers(root layout.Root, booted *record.Deployment, res *resolved, cfg *imageConfig) layerDiff {
	var d layerDiff
	old := map[string]bool{}
	if booted != nil {
		for _, l := range booted.Image.Layers {
			old[l] = true
		}
	}
	cur := map[string]bool{}
	for i, l := range res.manifest.LayerInfos() {
		id := cfg.RootFS.DiffIDs[i].String()
		cur[id] = true
		if !old[id] {
			d.newCount++
			d.newBytes += max(l.Size, 0)
		}
	}
	if booted == nil {
		return d
	}
	sizes, known := storedLayerSizes(root, booted)
	d.removedKnown = known
	for _, l := range booted.Image.Layers {
		if !cur[l] {
			d.removedCount++
			d.removedBytes += sizes[l]
		}
	}
	return d
}

// storedLayerSizes maps diff ID to blob size from the booted image's stored manifest and config.
func storedLayerSizes(root layout.Root, booted *record.Deployment) (map[string]int64, bool) {
	dg := booted.Image.ManifestDigest
	raw, err := os.ReadFile(root.ImageManifest(dg))
	if err != nil {
		return nil, false
	}
	m, err := manifest.FromBlob(raw, manifest.GuessMIMEType(raw))
	if err != nil {
		return nil, false
	}
	craw, err := os.ReadFile(root.ImageConfig(dg))
	if err != nil {
		return nil, false
	}
	var cfg imageConfig
	if err := json.Unmarshal(craw, &cfg); err != nil {
		return nil, false
	}
	infos := m.LayerInfos()
	if len(infos) != len(cfg.RootFS.DiffIDs) {
		return nil, false
	}
	sizes := map[string]int64{}
	for i, l := range infos {
		sizes[cfg.RootFS.DiffIDs[i].String()] = l.Size
	}
	return sizes, true
}

// humanBytes prints a size the way people read it (binary units).
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
