package sysroottest

import (
	"archive/tar"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"gobootc.dev/lib/envtest"
)

// RequirePodman ends the test as envtest.Missing does unless podman can fill a container storage
// here (root, podman installed).
func RequirePodman(t testing.TB) {
	t.Helper()
	envtest.NeedRoot(t)
	envtest.NeedTool(t, "podman")
}

// StoreImage puts an image named ref, holding one file with ref as its content (so that every
// ref is a distinct image), into the containers-storage at storage with `podman import`, as a
// bound image sync leaves it. No registry is involved.
func StoreImage(t testing.TB, storage, ref string) {
	t.Helper()
	RequirePodman(t)
	dir := t.TempDir()
	archive := filepath.Join(dir, "rootfs.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	w := tar.NewWriter(f)
	content := []byte(ref + "\n")
	if err := w.WriteHeader(&tar.Header{Name: "content", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(content); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// podman refuses a run root longer than 50 characters, which a test's directory can be.
	run, err := os.MkdirTemp("", "podman-run.")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(run)
	// libpod's database remembers the run root it was created with and refuses any other; the
	// storage holds no containers, so it holds nothing else (bootc-bound-images drops it too).
	if err := os.Remove(filepath.Join(storage, "libpod", "bolt_state.db")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	cmd := exec.Command("podman", "--root", storage, "--runroot", run, "--events-backend", "none",
		"import", "--quiet", archive, ref)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("podman import %s: %v\n%s", ref, err, out)
	}
}

// StoredImages returns the names of every image in the containers-storage at storage, sorted,
// read from the overlay driver's image list (no podman needed).
func StoredImages(t testing.TB, storage string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(storage, "overlay-images", "images.json"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		Names []string `json:"names"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatalf("parsing the image list of %s: %v", storage, err)
	}
	var names []string
	for _, im := range list {
		names = append(names, im.Names...)
	}
	sort.Strings(names)
	return names
}
