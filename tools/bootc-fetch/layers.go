package main

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/types"
	"golang.org/x/sys/unix"

	"gobootc.dev/lib/imgref"
	"gobootc.dev/lib/store"
)

// decompressionFactor is how much room a compressed layer is assumed to need once unpacked:
// the uncompressed size is not in the manifest, and OS image layers typically unpack to two to
// three times their gzip or zstd size. Uncompressed layers count once.
const decompressionFactor = 3

// layerPlan is one layer of the image and whether it must be fetched.
type layerPlan struct {
	info   types.BlobInfo
	diffID digest.Digest
	fetch  bool
	// dup marks a later copy of a layer the image lists twice: the first copy fetches it.
	dup bool
}

// plan lists the image's layers in order.
type plan struct {
	layers       []layerPlan
	reused       int   // layers already in the store
	cachedBytes  int64 // their blob sizes
	fetchBytes   int64 // blob sizes of the layers to fetch
	fetchLayers  int
	neededBytes  int64 // fetchBytes with decompression room (see decompressionFactor)
	unknownSizes bool  // some blob size was not in the manifest
}

// planLayers decides which layers to fetch: a layer is identified by its diff ID, so one that
// is stored under a different blob (another compression) is not fetched again.
func planLayers(st *store.Store, layers []manifest.LayerInfo, diffIDs []digest.Digest) (*plan, error) {
	p := &plan{}
	seen := map[digest.Digest]bool{}
	for i, l := range layers {
		lp := layerPlan{info: l.BlobInfo, diffID: diffIDs[i]}
		has, err := st.HasLayer(lp.diffID)
		if err != nil {
			return nil, err
		}
		switch {
		case has:
			p.reused++
			p.cachedBytes += max(l.Size, 0)
		case seen[lp.diffID]:
			lp.dup = true
		default:
			lp.fetch = true
			p.fetchLayers++
			if l.Size < 0 {
				p.unknownSizes = true
			} else {
				p.fetchBytes += l.Size
				p.neededBytes += l.Size * roomFactor(l.MediaType)
			}
		}
		seen[lp.diffID] = true
		p.layers = append(p.layers, lp)
	}
	return p, nil
}

// roomFactor is decompressionFactor for compressed media types, 1 for plain tar.
func roomFactor(mediaType string) int64 {
	switch {
	case strings.HasSuffix(mediaType, ".tar"), strings.HasSuffix(mediaType, ".diff.tar"):
		return 1
	}
	return decompressionFactor
}

// preflight refuses to start when the store's filesystem lacks room for the missing layers.
func preflight(dir string, p *plan, ref imgref.Ref) error {
	if p.neededBytes == 0 {
		return nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		return fmt.Errorf("checking free space in %s: %w", dir, err)
	}
	avail := int64(fs.Bavail) * int64(fs.Bsize)
	if avail < p.neededBytes {
		return fmt.Errorf("%w for %s in %s: required %s (%d missing layers of %s, ×%d for unpacking), available %s",
			ErrNoSpace, ref, dir, humanBytes(p.neededBytes), p.fetchLayers, humanBytes(p.fetchBytes), decompressionFactor, humanBytes(avail))
	}
	return nil
}

// fetchStats counts what a run downloaded.
type fetchStats struct {
	bytes  int64
	layers int
	// warnings are about entries the store leaves out on purpose (device nodes, fifos), each
	// with its layer.
	warnings []string
}

// maxLayerWarnings is how many of a layer's warnings are printed one by one.
const maxLayerWarnings = 3

// fetchLayers imports every layer the plan marks, in order.
func fetchLayers(ctx context.Context, src types.ImageSource, st *store.Store, p *plan, prog *progress) (fetchStats, error) {
	var fs fetchStats
	for i, l := range p.layers {
		if !l.fetch {
			continue
		}
		prog.layerStart(i)
		n, warns, err := fetchLayer(ctx, src, st, l, func(n int64) { prog.add(i, n) })
		fs.bytes += n
		// A base image's /dev can hold a dozen device nodes: a few name the kind, a count the rest.
		for j, w := range warns {
			if j == maxLayerWarnings && len(warns) > maxLayerWarnings+1 {
				fs.warnings = append(fs.warnings, fmt.Sprintf("layer %s: %d more entries skipped likewise", l.info.Digest, len(warns)-j))
				break
			}
			fs.warnings = append(fs.warnings, fmt.Sprintf("layer %s: %s", l.info.Digest, w))
		}
		if err != nil {
			return fs, err
		}
		fs.layers++
		prog.layerDone(i)
	}
	return fs, nil
}

// fetchLayer streams one blob through digest verification and decompression into the store,
// with no temporary copy of the blob. The compressed digest is checked when the uncompressed
// stream ends, before ImportLayer commits anything, so a blob that does not match its digest
// leaves the store as it was even if its content unpacks to the right diff ID.
//
// Every error names the layer once, by its blob digest.
func fetchLayer(ctx context.Context, src types.ImageSource, st *store.Store, l layerPlan, onRead func(int64)) (int64, []string, error) {
	if err := l.info.Digest.Validate(); err != nil {
		return 0, nil, fmt.Errorf("layer digest: %w", err)
	}
	rc, _, err := src.GetBlob(ctx, l.info, none.NoCache)
	if err != nil {
		return 0, nil, fmt.Errorf("layer %s: %w", l.info.Digest, err)
	}
	defer rc.Close()
	blob := &blobReader{r: rc, want: l.info.Size, digest: l.info.Digest, h: l.info.Digest.Algorithm().Hash(), onRead: onRead}
	_, decompress, stream, err := compression.DetectCompressionFormat(blob)
	if err != nil {
		return blob.n, nil, fmt.Errorf("layer %s: %w", l.info.Digest, err)
	}
	var plain io.Reader = stream
	if decompress != nil {
		dc, err := decompress(stream)
		if err != nil {
			return blob.n, nil, fmt.Errorf("layer %s: decompressing: %w", l.info.Digest, err)
		}
		defer dc.Close()
		plain = dc
	}
	ist, err := st.ImportLayer(ctx, &endCheck{r: plain, blob: blob}, l.diffID)
	if err != nil {
		// Named by its blob digest, as the manifest and the registry name it, and once.
		var le *store.LayerError
		if errors.As(err, &le) {
			err = le.Err
		}
		return blob.n, nil, fmt.Errorf("layer %s: %w", l.info.Digest, err)
	}
	return blob.n, ist.Warnings, nil
}

// blobReader hashes and counts the compressed blob.
type blobReader struct {
	r      io.Reader
	n      int64
	want   int64 // -1: unknown
	digest digest.Digest
	h      hash.Hash
	onRead func(int64)
}

func (b *blobReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		b.h.Write(p[:n])
		b.n += int64(n)
		b.onRead(int64(n))
		if b.want >= 0 && b.n > b.want {
			return n, fmt.Errorf("%w: more than the %d bytes the manifest gives", ErrBlobDigest, b.want)
		}
	}
	return n, err
}

// verify drains what the decompressor left and checks size and digest.
func (b *blobReader) verify() error {
	if _, err := io.Copy(io.Discard, b); err != nil {
		return err
	}
	if b.want >= 0 && b.n != b.want {
		return fmt.Errorf("%w: %d bytes instead of %d", ErrBlobDigest, b.n, b.want)
	}
	if got := digest.NewDigest(b.digest.Algorithm(), b.h); got != b.digest {
		return fmt.Errorf("%w: got %s", ErrBlobDigest, got)
	}
	return nil
}

// endCheck turns the end of the uncompressed stream into a verification of the whole blob.
type endCheck struct {
	r    io.Reader
	blob *blobReader
	done bool
	err  error
}

func (e *endCheck) Read(p []byte) (int, error) {
	if e.done {
		return 0, e.err
	}
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		e.done = true
		e.err = io.EOF
		if verr := e.blob.verify(); verr != nil {
			e.err = verr
		}
		return n, e.err
	}
	return n, err
}
