// Package deploytest makes fetched images for tests without a registry: layers imported into
// the store from in-memory tar streams, and the images/<digest>/ files a fetch leaves.
package deploytest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/store"
)

// Ref is the reference every test image comes from.
const Ref = "127.0.0.1:5000/os:latest"

// File is one member of a test layer: a regular file unless Dir or Link is set.
type File struct {
	Path string
	Body string
	Mode int64
	Dir  bool
	Link string // symlink target
}

// F is a regular file with mode 0644.
func F(path, body string) File { return File{Path: path, Body: body} }

// D is a directory with mode 0755.
func D(path string) File { return File{Path: path, Dir: true} }

// OS is a small bootable root: a binary, /etc/hostname, one kernel with an initramfs and a
// kargs.d file with the given arguments. kernel and initramfs are the boot files' contents.
func OS(kernel, initramfs string, kargs ...string) []File {
	list := "["
	for i, k := range kargs {
		if i > 0 {
			list += ", "
		}
		list += `"` + k + `"`
	}
	list += "]"
	return []File{
		D("usr"), D("usr/bin"), F("usr/bin/x", "#!/bin/sh\necho x\n"),
		D("etc"), F("etc/hostname", "image\n"), F("etc/os-release", "ID=test\n"),
		D("usr/lib"), D("usr/lib/modules"), D("usr/lib/modules/6.12.0"),
		F("usr/lib/modules/6.12.0/vmlinuz", kernel), F("usr/lib/modules/6.12.0/initramfs.img", initramfs),
		D("usr/lib/bootc"), D("usr/lib/bootc/kargs.d"),
		F("usr/lib/bootc/kargs.d/10.toml", "kargs = "+list+"\n"),
	}
}

// Layer encodes files as an uncompressed tar stream.
func Layer(t testing.TB, files []File) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.Path, Mode: f.Mode, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		switch {
		case f.Dir:
			h.Typeflag = tar.TypeDir
			if h.Mode == 0 {
				h.Mode = 0o755
			}
		case f.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Body))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(f.Body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Fetch imports the layers (lowest first) and writes the image's manifest, config and record
// as a fetch would, returning the image record. version distinguishes images with identical
// layers.
func Fetch(t testing.TB, r layout.Root, version string, layers ...[]File) record.Image {
	t.Helper()
	if err := r.Init(layout.DefaultStateroot); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(r.Store())
	if err != nil {
		t.Fatal(err)
	}
	var diffIDs []string
	for _, files := range layers {
		data := Layer(t, files)
		d := digest.FromBytes(data)
		if _, err := s.ImportLayer(context.Background(), bytes.NewReader(data), d); err != nil {
			t.Fatal(err)
		}
		diffIDs = append(diffIDs, d.String())
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Labels": map[string]string{"containers.bootc": "1", "org.opencontainers.image.version": version}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"digest": digest.FromBytes(config).String(), "size": len(config)},
		"layers": diffIDs,
	})
	md := digest.FromBytes(manifest).String()
	created := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	im := record.Image{
		Ref:            host.ImageReference{Image: Ref, Transport: host.TransportRegistry},
		ManifestDigest: md, ConfigDigest: digest.FromBytes(config).String(),
		Architecture: "amd64", Version: version, Created: &created, Layers: diffIDs,
	}
	if err := os.MkdirAll(r.Image(md), 0o700); err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string][]byte{r.ImageManifest(md): manifest, r.ImageConfig(md): config} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := record.Write(r.ImageRecord(md), &record.FetchedImage{Version: record.FormatVersion, Image: im, FetchedAt: created}); err != nil {
		t.Fatal(err)
	}
	return im
}

// Boot makes a deployment the booted one, as install or finalize and the initramfs leave it:
// its writable /etc copied from usr/etc, a boot entry per id (the first the default), and the
// booted marker.
func Boot(t testing.TB, r layout.Root, booted string, entries ...string) {
	t.Helper()
	sr := layout.DefaultStateroot
	etc := r.Etc(sr, booted)
	if _, err := os.Stat(etc); os.IsNotExist(err) {
		if err := os.MkdirAll(filepath.Dir(etc), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-a", filepath.Join(r.Deployment(sr, booted), "usr", "etc"), etc).CombinedOutput(); err != nil {
			t.Fatalf("copying /etc: %v\n%s", err, out)
		}
	}
	if err := os.MkdirAll(r.Entries(), 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(r.Entries(), "*.conf"))
	for _, f := range old {
		os.Remove(f)
	}
	for i, id := range entries {
		d, err := record.ReadDeployment(r, sr, id)
		if err != nil {
			t.Fatal(err)
		}
		boot := "/bootc/" + filepath.Base(r.BootFiles(d.BootDigest))
		body := "title " + id + "\nversion " + string(rune('9'-i)) + "\nlinux " + boot + "/vmlinuz\ninitrd " + boot +
			"/initramfs.img\noptions " + d.Kargs + " " + layout.DeploymentKarg + "=" + layout.DeploymentKargValue(sr, id) + "\n"
		if err := os.WriteFile(filepath.Join(r.Entries(), "bootc-"+string(rune('9'-i))+".conf"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := record.Remove(r.Staged()); err != nil {
		t.Fatal(err)
	}
	if err := record.Write(r.Booted(), &record.Booted{Version: record.FormatVersion, Stateroot: sr, ID: booted}); err != nil {
		t.Fatal(err)
	}
}

// Sha256 is "sha256:<hex>" of data.
func Sha256(data ...string) string {
	h := sha256.New()
	for _, d := range data {
		h.Write([]byte(d))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
