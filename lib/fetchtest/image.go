// Package fetchtest builds OCI images in memory and serves them from a local registry, for tests
// of the tools that fetch images.
package fetchtest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
)

// Compression is how a layer blob is encoded.
type Compression string

// Layer encodings and their OCI media types.
const (
	Gzip         Compression = "gzip"
	Zstd         Compression = "zstd"
	Uncompressed Compression = "none"
)

// OCI media types used by the fixtures.
const (
	MediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	MediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	refNameAnnotation = "org.opencontainers.image.ref.name"
)

// File is one member of a layer. Mode carries the type bits (fs.ModeDir, fs.ModeSymlink) and the
// permission bits including setuid, setgid and sticky; a zero Mode means a 0644 regular file.
type File struct {
	Path     string
	Mode     fs.FileMode
	Data     []byte
	Link     string // symlink target
	Hardlink string // path of an earlier member this one is a hardlink to
	UID, GID int
	Xattrs   map[string]string
}

// Layer is one image layer: either Files or Tar (a complete uncompressed tar stream), encoded as
// Compression (gzip when empty).
type Layer struct {
	Files       []File
	Tar         []byte
	Compression Compression
}

// Image describes an image to build.
type Image struct {
	Layers []Layer
	Labels map[string]string
	// Architecture defaults to amd64, OS to linux.
	Architecture string
	OS           string
	Created      time.Time
}

// Built is what WriteLayout produced for one image.
type Built struct {
	Manifest       []byte
	ManifestDigest digest.Digest
	Config         []byte
	ConfigDigest   digest.Digest
	DiffIDs        []digest.Digest
	LayerDigests   []digest.Digest
	LayerSizes     []int64
}

// KernelVersion is the kernel release that Bootable images carry.
const KernelVersion = "6.12.0-test"

// KernelFiles returns a kernel-like /usr/lib/modules/<kver>/{vmlinuz,initramfs.img} pair of small
// files with their directories.
func KernelFiles(kver string) []File {
	dir := "usr/lib/modules/" + kver
	return []File{
		{Path: "usr", Mode: fs.ModeDir | 0o755},
		{Path: "usr/lib", Mode: fs.ModeDir | 0o755},
		{Path: "usr/lib/modules", Mode: fs.ModeDir | 0o755},
		{Path: dir, Mode: fs.ModeDir | 0o755},
		{Path: dir + "/vmlinuz", Mode: 0o644, Data: []byte("kernel " + kver + "\n")},
		{Path: dir + "/initramfs.img", Mode: 0o644, Data: []byte("initramfs " + kver + "\n")},
	}
}

// Bootable returns a small bootable image: a kernel layer, an /etc layer and a layer with the
// given files, labelled containers.bootc=1 and with the given version.
func Bootable(version string, files ...File) Image {
	etc := []File{
		{Path: "etc", Mode: fs.ModeDir | 0o755},
		{Path: "etc/os-release", Data: []byte("NAME=test\nVERSION_ID=" + version + "\n")},
	}
	img := Image{
		Layers: []Layer{{Files: KernelFiles(KernelVersion)}, {Files: etc, Compression: Zstd}},
		Labels: map[string]string{
			"containers.bootc":                 "1",
			"org.opencontainers.image.version": version,
		},
		Created: time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC),
	}
	if len(files) > 0 {
		img.Layers = append(img.Layers, Layer{Files: files, Compression: Uncompressed})
	}
	return img
}

// TarFiles renders files as an uncompressed tar stream.
func TarFiles(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, f := range files {
		h := &tar.Header{Name: f.Path, Uid: f.UID, Gid: f.GID, ModTime: mtime, Format: tar.FormatPAX}
		perm := int64(f.Mode.Perm())
		if f.Mode&fs.ModeSetuid != 0 {
			perm |= 0o4000
		}
		if f.Mode&fs.ModeSetgid != 0 {
			perm |= 0o2000
		}
		if f.Mode&fs.ModeSticky != 0 {
			perm |= 0o1000
		}
		if f.Mode == 0 {
			perm = 0o644
		}
		h.Mode = perm
		switch {
		case f.Hardlink != "":
			h.Typeflag, h.Linkname = tar.TypeLink, f.Hardlink
		case f.Mode&fs.ModeDir != 0:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		case f.Mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Data))
		}
		if len(f.Xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range f.Xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("writing tar header %q: %w", f.Path, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Compress encodes an uncompressed layer stream.
func Compress(c Compression, raw []byte) ([]byte, string, error) {
	switch c {
	case Gzip, "":
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if _, err := zw.Write(raw); err != nil {
			return nil, "", err
		}
		if err := zw.Close(); err != nil {
			return nil, "", err
		}
		return buf.Bytes(), "application/vnd.oci.image.layer.v1.tar+gzip", nil
	case Zstd:
		return zstdFrame(raw), "application/vnd.oci.image.layer.v1.tar+zstd", nil
	case Uncompressed:
		return raw, "application/vnd.oci.image.layer.v1.tar", nil
	}
	return nil, "", fmt.Errorf("unknown compression %q", c)
}

// zstdFrame wraps data in a valid zstd frame made of raw (stored) blocks. The standard library
// has no zstd encoder, and the point of these fixtures is to exercise the fetcher's decoder and
// media-type handling, not compression ratio.
func zstdFrame(data []byte) []byte {
	const maxBlock = 128 << 10
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, // magic
		0x00,   // frame header descriptor: no content size, no checksum, no dictionary
		7 << 3} // window descriptor: 2^(10+7) = 128 KiB, the largest block
	for first := true; first || len(data) > 0; first = false {
		n := min(len(data), maxBlock)
		last := 0
		if n == len(data) {
			last = 1
		}
		// Block header: bit 0 last block, bits 1-2 type (0 = raw), bits 3-23 size.
		hdr := uint32(last) | uint32(n)<<3
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], hdr)
		out = append(out, b[:3]...)
		out = append(out, data[:n]...)
		data = data[n:]
	}
	return out
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      digest.Digest     `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type ociIndex struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

// Build renders an image into blobs without writing anything.
func Build(img Image) (Built, map[digest.Digest][]byte, error) {
	blobs := map[digest.Digest][]byte{}
	var b Built
	var layers []descriptor
	for i, l := range img.Layers {
		raw := l.Tar
		if raw == nil {
			var err error
			if raw, err = TarFiles(l.Files); err != nil {
				return b, nil, fmt.Errorf("layer %d: %w", i, err)
			}
		}
		blob, mt, err := Compress(l.Compression, raw)
		if err != nil {
			return b, nil, fmt.Errorf("layer %d: %w", i, err)
		}
		d := digest.FromBytes(blob)
		blobs[d] = blob
		b.DiffIDs = append(b.DiffIDs, digest.FromBytes(raw))
		b.LayerDigests = append(b.LayerDigests, d)
		b.LayerSizes = append(b.LayerSizes, int64(len(blob)))
		layers = append(layers, descriptor{MediaType: mt, Digest: d, Size: int64(len(blob))})
	}
	arch, osName := img.Architecture, img.OS
	if arch == "" {
		arch = "amd64"
	}
	if osName == "" {
		osName = "linux"
	}
	created := img.Created
	if created.IsZero() {
		created = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	cfg := map[string]any{
		"architecture": arch,
		"os":           osName,
		"created":      created.Format(time.RFC3339),
		"config":       map[string]any{"Labels": img.Labels},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": b.DiffIDs},
	}
	var err error
	if b.Config, err = json.Marshal(cfg); err != nil {
		return b, nil, err
	}
	b.ConfigDigest = digest.FromBytes(b.Config)
	blobs[b.ConfigDigest] = b.Config
	if layers == nil {
		layers = []descriptor{}
	}
	man := map[string]any{
		"schemaVersion": 2,
		"mediaType":     MediaTypeManifest,
		"config":        descriptor{MediaType: MediaTypeConfig, Digest: b.ConfigDigest, Size: int64(len(b.Config))},
		"layers":        layers,
	}
	if b.Manifest, err = json.Marshal(man); err != nil {
		return b, nil, err
	}
	b.ManifestDigest = digest.FromBytes(b.Manifest)
	blobs[b.ManifestDigest] = b.Manifest
	return b, blobs, nil
}

// WriteLayout adds img to the OCI layout directory dir (created if needed) under tag.
func WriteLayout(dir, tag string, img Image) (Built, error) {
	b, blobs, err := Build(img)
	if err != nil {
		return b, err
	}
	if err := writeBlobs(dir, blobs); err != nil {
		return b, err
	}
	return b, addToIndex(dir, descriptor{MediaType: MediaTypeManifest, Digest: b.ManifestDigest, Size: int64(len(b.Manifest)),
		Annotations: map[string]string{refNameAnnotation: tag}})
}

// WriteIndexLayout adds a multi-platform image index of imgs to dir under tag. It returns the
// index digest and each instance as built.
func WriteIndexLayout(dir, tag string, imgs ...Image) (digest.Digest, []Built, error) {
	var all []Built
	idx := ociIndex{SchemaVersion: 2, MediaType: MediaTypeIndex}
	for _, img := range imgs {
		b, blobs, err := Build(img)
		if err != nil {
			return "", nil, err
		}
		if err := writeBlobs(dir, blobs); err != nil {
			return "", nil, err
		}
		var p platform
		if err := json.Unmarshal(b.Config, &p); err != nil {
			return "", nil, err
		}
		idx.Manifests = append(idx.Manifests, descriptor{MediaType: MediaTypeManifest, Digest: b.ManifestDigest,
			Size: int64(len(b.Manifest)), Platform: &p})
		all = append(all, b)
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return "", nil, err
	}
	d := digest.FromBytes(raw)
	if err := writeBlobs(dir, map[digest.Digest][]byte{d: raw}); err != nil {
		return "", nil, err
	}
	return d, all, addToIndex(dir, descriptor{MediaType: MediaTypeIndex, Digest: d, Size: int64(len(raw)),
		Annotations: map[string]string{refNameAnnotation: tag}})
}

func writeBlobs(dir string, blobs map[digest.Digest][]byte) error {
	bdir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	for d, b := range blobs {
		if err := os.WriteFile(filepath.Join(bdir, d.Encoded()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// addToIndex records desc in dir/index.json, replacing an entry with the same tag.
func addToIndex(dir string, desc descriptor) error {
	p := filepath.Join(dir, "index.json")
	idx := ociIndex{SchemaVersion: 2, MediaType: MediaTypeIndex}
	if b, err := os.ReadFile(p); err == nil {
		if err := json.Unmarshal(b, &idx); err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
	}
	tag := desc.Annotations[refNameAnnotation]
	kept := idx.Manifests[:0]
	for _, m := range idx.Manifests {
		if m.Annotations[refNameAnnotation] != tag {
			kept = append(kept, m)
		}
	}
	idx.Manifests = append(kept, desc)
	sort.SliceStable(idx.Manifests, func(i, j int) bool {
		return idx.Manifests[i].Annotations[refNameAnnotation] < idx.Manifests[j].Annotations[refNameAnnotation]
	})
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// ManyFiles returns n small regular files under dir (for tests that need volume).
func ManyFiles(dir string, n, size int) []File {
	files := []File{{Path: dir, Mode: fs.ModeDir | 0o755}}
	for i := range n {
		data := bytes.Repeat([]byte{byte(i)}, size)
		copy(data, fmt.Sprintf("file %d\n", i))
		files = append(files, File{Path: path.Join(dir, fmt.Sprintf("f%05d", i)), Data: data})
	}
	return files
}
