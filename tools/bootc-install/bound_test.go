package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/boundimage"
	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/fetchtest"
)

// TestBoundImagesAtInstall: the images the OS binds are in the new root's bootc storage when the
// install ends, so the first boot finds them.
func TestBoundImagesAtInstall(t *testing.T) {
	needRoot(t, "podman", "skopeo")
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		envtest.Missing(t, "busybox-static is not installed (scripts/deps.sh installs it): %v", err)
	}
	reg := fetchtest.StartRegistry(t)
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := fetchtest.WriteRegistriesConf(conf, reg.Host); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONTAINERS_REGISTRIES_CONF", conf)
	app := filepath.Join(t.TempDir(), "app")
	if _, err := fetchtest.WriteLayout(app, "1", fetchtest.Image{Layers: []fetchtest.Layer{{Files: []fetchtest.File{
		{Path: "bin", Mode: fs.ModeDir | 0o755}, {Path: "bin/busybox", Mode: 0o755, Data: bb}}}}}); err != nil {
		t.Fatal(err)
	}
	reg.Push("oci:"+app+":1", "app:1")
	appRef := reg.Host + "/app:1"

	dir := func(p string) fetchtest.File { return fetchtest.File{Path: p, Mode: fs.ModeDir | 0o755} }
	files := append(imageFiles(),
		dir("usr/share"), dir("usr/share/containers"), dir("usr/share/containers/systemd"),
		fetchtest.File{Path: "usr/share/containers/systemd/app.image", Data: []byte("[Image]\nImage=" + appRef + "\n")},
		dir("usr/lib/bootc/bound-images.d"),
		fetchtest.File{Path: boundimage.Dir + "/app.image", Mode: fs.ModeSymlink | 0o777, Link: "/usr/share/containers/systemd/app.image"},
	)
	oci := filepath.Join(t.TempDir(), "oci")
	if _, err := fetchtest.WriteLayout(oci, "latest", fetchtest.Bootable("1.0", files...)); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root")
	os.Mkdir(root, 0o755)
	mustInstall(t, "to-filesystem", "--source-imgref", "oci:"+oci+":latest", "--root-mount-spec", "LABEL=root", "--bound-images", "pull", root)

	// The storage's own image list, read as a file: podman would insist on the run root the
	// install's service used.
	lists, _ := filepath.Glob(filepath.Join(root, "bootc/storage/*-images/images.json"))
	var names string
	for _, l := range lists {
		b, _ := os.ReadFile(l)
		names += string(b)
	}
	if !strings.Contains(names, appRef) {
		t.Errorf("bound image %s not in the installed root's storage (%v):\n%s", appRef, lists, names)
	}
}
