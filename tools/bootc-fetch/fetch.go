package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/renameio/v2"
	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"

	"gobootc.dev/lib/host"
	"gobootc.dev/lib/imgref"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/mountns"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
	"gobootc.dev/lib/store"
)

// bootcLabel marks an image built to be booted; its absence only earns a warning, as upstream.
const bootcLabel = "containers.bootc"

// target is what to fetch and what the host runs now.
type target struct {
	ref       imgref.Ref
	sig       *host.ImageSignature
	stateroot string
	booted    *record.Deployment // nil on a root not booted through bootc
	staged    *record.Deployment
}

// Result is the JSON document --result writes for callers (bootc upgrade/switch).
type Result = record.FetchResult

// Run fetches the image, or with --check only looks for an update.
//
// Step order: resolve the target; open the source; resolve the manifest (choosing this
// machine's instance from a list); enforce the signature policy if the reference asks for it;
// fetch and verify the config. --check stops here and caches the pending update. Otherwise:
// take the writer lock; check free space for the missing layers; stream each missing layer
// through digest verification and decompression into the store; write manifest, config and,
// last, the image record.
func (c *CLI) Run(ctx context.Context, stdout, stderr io.Writer) error {
	if err := c.validate(); err != nil {
		return err
	}
	root := c.layoutRoot()
	// Both a fetch and --check write under the physical root, read-only on a booted host.
	if err := mountns.MakeWritable(root.Phys); err != nil {
		return err
	}
	tgt, err := c.target(root)
	if err != nil {
		return err
	}
	if err := c.fetch(ctx, root, tgt, stdout, stderr); err != nil {
		return fmt.Errorf("fetching %s: %w", tgt.ref.TransportString(), err)
	}
	return nil
}

// target works out the reference: IMAGE as given, or the booted deployment's (with --tag).
func (c *CLI) target(root layout.Root) (*target, error) {
	cmdline := c.Cmdline
	if cmdline == "" {
		cmdline = "/proc/cmdline"
	}
	st, err := status.Load(status.Options{Root: root, Cmdline: cmdline})
	if err != nil {
		return nil, fmt.Errorf("reading the host state: %w", err)
	}
	t := &target{stateroot: layout.DefaultStateroot}
	if st.Booted != nil {
		t.booted, t.stateroot = st.Booted.Deployment, st.Booted.Stateroot
	}
	if st.Staged != nil {
		t.staged = st.Staged.Deployment
	}
	if c.Image != "" {
		if t.ref, err = imgref.Resolve(c.Transport, c.Image, cwd()); err != nil {
			return nil, err
		}
		t.sig = c.signature(nil)
	} else {
		if t.booted == nil {
			return nil, fmt.Errorf("%w: no IMAGE given and no booted deployment whose image to fetch", ErrNothingToFetch)
		}
		// The host tracks what spec.image says: the staged deployment's image when there is one
		// (a switch not yet booted), else the booted one's.
		own := t.booted.Image.Ref
		if t.staged != nil {
			own = t.staged.Image.Ref
		}
		if t.ref, err = imgref.Parse(own.Transport, own.Image); err != nil {
			return nil, fmt.Errorf("booted deployment's image: %w", err)
		}
		if c.Tag != "" {
			if t.ref, err = t.ref.WithTag(c.Tag); err != nil {
				return nil, err
			}
		}
		t.sig = c.signature(own.Signature)
	}
	if t.sig != nil && t.sig.OstreeRemote != "" {
		return nil, fmt.Errorf("image %s: signature mode %s needs the ostree backend, which this implementation does not have", t.ref, signatureMode(t.sig))
	}
	return t, nil
}

// hostRef is the reference as recorded: as given, with its signature mode.
func (t *target) hostRef() host.ImageReference {
	return host.ImageReference{Image: t.ref.Image, Transport: t.ref.Transport.String(), Signature: t.sig}
}

// fetch carries out Run's steps from opening the source on.
func (c *CLI) fetch(ctx context.Context, root layout.Root, tgt *target, stdout, stderr io.Writer) error {
	sys, err := c.systemContext()
	if err != nil {
		return err
	}
	cref, err := parseReference(tgt.ref)
	if err != nil {
		return err
	}
	src, err := cref.NewImageSource(ctx, sys)
	if err != nil {
		return err
	}
	defer src.Close()
	img, err := inspect(ctx, sys, src, tgt, stderr)
	if err != nil {
		return err
	}
	if c.Check {
		return c.check(root, tgt, img.res, img.configRaw, img.cfg, img.rec, stdout)
	}
	return c.storeImage(ctx, root, tgt, src, img, stdout, stderr)
}

// inspected is what is known of the image before any layer is fetched.
type inspected struct {
	res       *resolved
	configRaw []byte
	cfg       *imageConfig
	layers    []manifest.LayerInfo
	rec       record.Image
}

// inspect resolves the manifest, enforces the signature policy if the reference asks for it,
// and fetches and checks the config.
func inspect(ctx context.Context, sys *types.SystemContext, src types.ImageSource, tgt *target, stderr io.Writer) (*inspected, error) {
	res, err := resolve(ctx, sys, src, tgt.ref.Digest())
	if err != nil {
		return nil, err
	}
	if tgt.sig != nil && tgt.sig.Mode == host.SignatureContainerPolicy {
		if err := verifyPolicy(ctx, sys, src); err != nil {
			return nil, err
		}
	}
	configRaw, cfg, err := fetchConfig(ctx, src, res.manifest.ConfigInfo())
	if err != nil {
		return nil, err
	}
	layers, err := res.layerInfos(ctx)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("%w: the config lists %d diff IDs for %d layers", ErrNotBootable, len(cfg.RootFS.DiffIDs), len(layers))
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("%w: config diff ID %q: %v", ErrNotBootable, d, err)
		}
	}
	rec := imageRecord(tgt.hostRef(), res.digest, res.manifest.ConfigInfo().Digest, cfg)
	if cfg.Config.Labels[bootcLabel] != "1" {
		fmt.Fprintf(stderr, "warning: %s lacks the label %s=1; it may not be a bootable image\n", tgt.ref, bootcLabel)
	}
	return &inspected{res: res, configRaw: configRaw, cfg: cfg, layers: layers, rec: rec}, nil
}

// storeImage takes the writer lock, streams the missing layers into the store, writes the
// manifest, the config and the image record, and reports what it fetched.
func (c *CLI) storeImage(ctx context.Context, root layout.Root, tgt *target, src types.ImageSource, img *inspected, stdout, stderr io.Writer) error {
	lk, err := c.lock(ctx, root, stderr)
	if err != nil {
		return err
	}
	defer lk.Release()
	if err := root.Init(tgt.stateroot); err != nil {
		return fmt.Errorf("preparing %s: %w", root.Bootc(), err)
	}
	st, err := store.Open(root.Store())
	if err != nil {
		return err
	}
	plan, err := planLayers(st, img.layers, img.cfg.RootFS.DiffIDs)
	if err != nil {
		return err
	}
	if err := preflight(root.Store(), plan, tgt.ref); err != nil {
		return err
	}
	prog := newProgress(c.progressSinks(stderr), tgt.ref.String(), plan)
	fetched, err := fetchLayers(ctx, src, st, plan, prog)
	prog.finish(err)
	for _, w := range fetched.warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if err != nil {
		return err
	}
	_, statErr := os.Stat(root.ImageRecord(img.res.digest.String()))
	isNew := errors.Is(statErr, os.ErrNotExist)
	if err := writeImage(root, img.res, img.configRaw, img.rec); err != nil {
		return err
	}
	return c.report(tgt, img, plan, fetched, isNew, stdout)
}

// report writes the --result document, tells the journal about an image not stored before,
// and prints the summary line.
func (c *CLI) report(tgt *target, img *inspected, p *plan, fetched fetchStats, isNew bool, stdout io.Writer) error {
	res, rec := img.res, img.rec
	out := Result{
		ManifestDigest: res.digest.String(), Version: rec.Version,
		Changed:       !sameDigest(tgt.booted, res.digest) && !sameDigest(tgt.staged, res.digest),
		AlreadyStaged: sameDigest(tgt.staged, res.digest),
		BytesFetched:  fetched.bytes, LayersFetched: fetched.layers, LayersReused: p.reused,
	}
	if c.Result != "" {
		if err := record.WriteResult(c.Result, out); err != nil {
			return err
		}
	}
	if isNew {
		msg := fmt.Sprintf("Fetched image %s (%s)", tgt.ref, res.digest)
		// Without a journal (in a container, as at install) Send writes the message to stderr;
		// unless --quiet, the line printed below already tells a person, so that copy is dropped.
		if !c.Quiet {
			defer journal.SetFallback(journal.SetFallback(io.Discard))
		}
		_ = journal.Send(journal.Fetch, journal.Info, msg, map[string]string{
			"BOOTC_IMAGE": tgt.ref.String(), "BOOTC_MANIFEST_DIGEST": res.digest.String(), "BOOTC_VERSION": rec.Version,
		})
	}
	if !c.Quiet {
		fmt.Fprintf(stdout, "Fetched %s: %s (%d layers fetched, %s; %d already stored)\n",
			tgt.ref, res.digest, fetched.layers, humanBytes(fetched.bytes), p.reused)
	}
	return nil
}

// lock takes the writer lock, saying so when it has to wait.
func (c *CLI) lock(ctx context.Context, root layout.Root, stderr io.Writer) (*lock.Lock, error) {
	if err := os.MkdirAll(root.Bootc(), 0o700); err != nil {
		return nil, fmt.Errorf("preparing %s: %w", root.Bootc(), err)
	}
	return lock.Acquire(ctx, root.Lock(), lock.Options{
		Operation: "fetch",
		Wait:      c.LockWait,
		Notify:    func(msg string) { fmt.Fprintln(stderr, msg) },
	})
}

// imageRecord describes the fetched image.
func imageRecord(ref host.ImageReference, manifestDigest, configDigest digest.Digest, cfg *imageConfig) record.Image {
	labels := cfg.Config.Labels
	rec := record.Image{
		Ref:            ref,
		ManifestDigest: manifestDigest.String(),
		ConfigDigest:   configDigest.String(),
		Architecture:   cfg.Architecture,
		Version:        labels["org.opencontainers.image.version"],
	}
	if rec.Version == "" {
		rec.Version = labels["version"]
	}
	if t, err := time.Parse(time.RFC3339Nano, labels["org.opencontainers.image.created"]); err == nil {
		t = t.UTC()
		rec.Created = &t
	} else if cfg.Created != nil && !cfg.Created.IsZero() {
		t := cfg.Created.UTC()
		rec.Created = &t
	}
	for _, d := range cfg.RootFS.DiffIDs {
		rec.Layers = append(rec.Layers, d.String())
	}
	return rec
}

func sameDigest(d *record.Deployment, dg digest.Digest) bool {
	return d != nil && d.Image.ManifestDigest == dg.String()
}

// writeImage stores manifest and config as fetched, then the record that marks them complete.
func writeImage(root layout.Root, res *resolved, configRaw []byte, rec record.Image) error {
	d := res.digest.String()
	if err := os.MkdirAll(root.Image(d), 0o700); err != nil {
		return fmt.Errorf("writing image %s: %w", d, err)
	}
	if err := renameio.WriteFile(root.ImageManifest(d), res.raw, 0o644); err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	if err := renameio.WriteFile(root.ImageConfig(d), configRaw, 0o644); err != nil {
		return fmt.Errorf("writing config: %w", err)
	}
	fi := &record.FetchedImage{Version: record.FormatVersion, Image: rec, FetchedAt: time.Now().UTC()}
	if err := record.Write(root.ImageRecord(d), fi); err != nil {
		return fmt.Errorf("writing image record: %w", err)
	}
	return nil
}
