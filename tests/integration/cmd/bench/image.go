package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gobootc.dev/lib/fetchtest"
)

// group names the layer a root filesystem path goes to. The root is split by directory so that
// an update touching one part of the system (here /etc) changes one small layer only.
type group int

const (
	groupBase  group = iota // top-level directories, /var, the rest of /usr
	groupLib                // /usr/lib
	groupShare              // /usr/share
	groupBin                // /usr/bin, /usr/sbin
	groupEtc                // /etc: the small layer an update changes
	numGroups
)

func groupOf(name string) group {
	p := strings.TrimPrefix(name, "./")
	switch {
	case p == "etc" || p == "etc/" || strings.HasPrefix(p, "etc/"):
		return groupEtc
	case strings.HasPrefix(p, "usr/lib/") && p != "usr/lib/":
		return groupLib
	case strings.HasPrefix(p, "usr/share/") && p != "usr/share/":
		return groupShare
	case (strings.HasPrefix(p, "usr/bin/") && p != "usr/bin/") || (strings.HasPrefix(p, "usr/sbin/") && p != "usr/sbin/"):
		return groupBin
	}
	return groupBase
}

// member is one tar entry with its content.
type member struct {
	hdr  *tar.Header
	data []byte
}

// splitRoot reads a root filesystem tar stream into one member list per group. A hardlink goes
// with its target so that both are in the same layer.
func splitRoot(raw []byte) ([numGroups][]member, error) {
	var groups [numGroups][]member
	where := map[string]group{}
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return groups, nil
		}
		if err != nil {
			return groups, fmt.Errorf("reading the root tarball: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return groups, fmt.Errorf("reading %s from the root tarball: %w", hdr.Name, err)
		}
		g := groupOf(hdr.Name)
		if hdr.Typeflag == tar.TypeLink {
			if tg, ok := where[hdr.Linkname]; ok {
				g = tg
			}
		}
		where[hdr.Name] = g
		groups[g] = append(groups[g], member{hdr: hdr, data: data})
	}
}

// variant says how a build of the image differs from the first one.
type variant struct {
	// shift moves every member's mtime, which changes every layer's digest without touching
	// any file's content.
	shift time.Duration
	// touchEvery changes the content of every n-th regular file (0: none).
	touchEvery int
	// etcNote, when set, is written to /etc/bench-note: the one small layer that changes.
	etcNote string
	// extra is appended as a last layer of incompressible data (bytes; 0: none).
	extra int
}

// renderLayer writes members as a tar stream, applying v.
func renderLayer(ms []member, v variant, counter *int) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range ms {
		hdr := *m.hdr
		data := m.data
		hdr.ModTime = hdr.ModTime.Add(v.shift)
		// Access and change times would force PAX headers that the original may not have.
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if hdr.Typeflag == tar.TypeReg && v.touchEvery > 0 {
			*counter++
			if *counter%v.touchEvery == 0 {
				data = append(append([]byte(nil), data...), "\n# rebuilt\n"...)
				hdr.Size = int64(len(data))
			}
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			return nil, fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
		if _, err := tw.Write(data); err != nil {
			return nil, fmt.Errorf("writing %s: %w", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// benchImage builds the bootable image from the split root and the kernel layer of
// fetchtest.DebianImage, with v applied, as gzip layers.
func benchImage(groups [numGroups][]member, kernel []fetchtest.File, version string, v variant) (fetchtest.Image, error) {
	counter := 0
	img := fetchtest.Image{
		Labels:  map[string]string{"containers.bootc": "1", "org.opencontainers.image.version": version},
		Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for g := range numGroups {
		ms := groups[g]
		if g == groupEtc && v.etcNote != "" {
			note := &tar.Header{Name: "./etc/bench-note", Mode: 0o644, Size: int64(len(v.etcNote)),
				Typeflag: tar.TypeReg, ModTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			ms = append(append([]member(nil), ms...), member{hdr: note, data: []byte(v.etcNote)})
		}
		raw, err := renderLayer(ms, v, &counter)
		if err != nil {
			return img, err
		}
		img.Layers = append(img.Layers, fetchtest.Layer{Tar: raw, Compression: fetchtest.Gzip})
	}
	kraw, err := fetchtest.TarFiles(kernel)
	if err != nil {
		return img, err
	}
	if v.shift != 0 {
		// The kernel layer has no mtimes to move: rebuild it through the same path.
		ks, err := splitAll(kraw)
		if err != nil {
			return img, err
		}
		if kraw, err = renderLayer(ks, v, &counter); err != nil {
			return img, err
		}
	}
	img.Layers = append(img.Layers, fetchtest.Layer{Tar: kraw, Compression: fetchtest.Gzip})
	if v.extra > 0 {
		img.Layers = append(img.Layers, fetchtest.Layer{Compression: fetchtest.Gzip, Files: []fetchtest.File{
			{Path: "usr/share/bench-blob", Data: fetchtest.RandomBytes(42, v.extra)},
		}})
	}
	return img, nil
}

// splitAll reads a tar stream into members without grouping.
func splitAll(raw []byte) ([]member, error) {
	var ms []member
	tr := tar.NewReader(bytes.NewReader(raw))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return ms, nil
		}
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		ms = append(ms, member{hdr: hdr, data: data})
	}
}

// images is every build of the image the figures use, pushed to the local registry.
type images struct {
	reg  *fetchtest.Registry
	conf string // registries.conf marking the registry as plain HTTP

	base, update, rebuilt, large fetchtest.Built
	// changed is the index of the layer the update changes.
	changed int
	// files and rebuiltFiles count the regular files of the root, and how many the rebuild changed.
	files, rebuiltFiles int
}

// Image names on the registry.
const (
	refBase    = "os:1"
	refUpdate  = "os:2"
	refRebuilt = "os:1-rebuilt"
	refLarge   = "os:1-large"
)

// buildImages builds the four images into an OCI layout under dir and pushes them.
func buildImages(h *harness, dir string, largeBytes int) (*images, error) {
	img, err := fetchtest.DebianImage(fetchtest.DebianTarball(h), "1")
	if err != nil {
		return nil, err
	}
	groups, err := splitRoot(img.Layers[0].Tar)
	if err != nil {
		return nil, err
	}
	kernel := img.Layers[1].Files
	ims := &images{reg: fetchtest.StartRegistry(h), conf: filepath.Join(dir, "registries.conf"), changed: int(groupEtc)}
	if err := fetchtest.WriteRegistriesConf(ims.conf, ims.reg.Host); err != nil {
		return nil, err
	}
	for _, ms := range groups {
		for _, m := range ms {
			if m.hdr.Typeflag == tar.TypeReg {
				ims.files++
			}
		}
	}
	const touchEvery = 20 // 5% of the files change in the rebuild
	ims.rebuiltFiles = ims.files / touchEvery
	oci := filepath.Join(dir, "oci")
	builds := []struct {
		ref     string
		version string
		v       variant
		out     *fetchtest.Built
	}{
		{refBase, "1", variant{}, &ims.base},
		{refUpdate, "2", variant{etcNote: "update 2\n"}, &ims.update},
		{refRebuilt, "1.1", variant{shift: time.Hour, touchEvery: touchEvery}, &ims.rebuilt},
		{refLarge, "1-large", variant{extra: largeBytes}, &ims.large},
	}
	for _, b := range builds {
		im, err := benchImage(groups, kernel, b.version, b.v)
		if err != nil {
			return nil, fmt.Errorf("building %s: %w", b.ref, err)
		}
		tag := strings.ReplaceAll(b.ref, ":", "-")
		if *b.out, err = fetchtest.WriteLayout(oci, tag, im); err != nil {
			return nil, fmt.Errorf("writing %s: %w", b.ref, err)
		}
		ims.reg.Push("oci:"+oci+":"+tag, b.ref)
	}
	// The layouts are pushed; the registry holds its own copy.
	if err := os.RemoveAll(oci); err != nil {
		return nil, err
	}
	return ims, nil
}

// ref is the registry reference of an image name.
func (ims *images) ref(name string) string { return ims.reg.Ref(name) }

// compressedSize is the sum of an image's layer blob sizes.
func compressedSize(b fetchtest.Built) int64 {
	var n int64
	for _, s := range b.LayerSizes {
		n += s
	}
	return n
}
