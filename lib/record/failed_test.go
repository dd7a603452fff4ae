package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/layout"
)

func digestN(n int) string { return fmt.Sprintf("sha256:%064x", n) }

func TestFailedImages(t *testing.T) {
	r := testRoot(t)
	f, err := ReadFailedImages(r, "default")
	if err != nil || len(f.Images) != 0 || f.Lookup(digestN(1)) != nil {
		t.Fatalf("no record yet: %+v, %v", f, err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	first := FailedImage{ManifestDigest: digestN(1), Image: "quay.io/x/os:latest", ID: "aaaa.0", Time: t0,
		Reason: "never reached a healthy boot in 2 tries", Tries: 2}
	if err := AddFailedImage(r, "default", first); err != nil {
		t.Fatal(err)
	}
	second := FailedImage{ManifestDigest: digestN(2), ID: "bbbb.0", Time: t0.Add(time.Hour), Reason: "required check failed",
		Check: "/etc/greenboot/check/required.d/10-app.sh", LastLines: []string{"app not ready"}}
	if err := AddFailedImage(r, "default", second); err != nil {
		t.Fatal(err)
	}

	// The file is the versioned record, readable by anything that parses JSON.
	var onDisk struct {
		Version int              `json:"version"`
		Images  []map[string]any `json:"images"`
	}
	data, err := os.ReadFile(r.FailedImages("default"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &onDisk); err != nil || onDisk.Version != 1 || len(onDisk.Images) != 2 {
		t.Fatalf("on disk: %s (%v)", data, err)
	}
	if got := onDisk.Images[1]; got["manifestDigest"] != digestN(2) || got["check"] != second.Check || got["stateroot"] != "default" {
		t.Errorf("second entry on disk: %v", got)
	}

	got, err := LookupFailedImage(r, "default", digestN(1))
	if err != nil || got == nil || got.ID != "aaaa.0" || !got.Time.Equal(t0) || got.Tries != 2 || got.Stateroot != "default" {
		t.Fatalf("lookup of the first: %+v, %v", got, err)
	}
	if got, err := LookupFailedImage(r, "default", digestN(3)); err != nil || got != nil {
		t.Errorf("lookup of an image that never failed: %+v, %v", got, err)
	}
	// Failed images are per stateroot.
	if got, err := LookupFailedImage(r, "other", digestN(1)); err != nil || got != nil {
		t.Errorf("lookup in another stateroot: %+v, %v", got, err)
	}

	// The same image failing again: one entry, the newest, now last.
	again := first
	again.ID, again.Time, again.Reason = "aaaa.1", t0.Add(2*time.Hour), "required check failed again"
	if err := AddFailedImage(r, "default", again); err != nil {
		t.Fatal(err)
	}
	f, err = ReadFailedImages(r, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Images) != 2 || f.Images[0].ManifestDigest != digestN(2) || f.Images[1].ID != "aaaa.1" {
		t.Errorf("after the same image failed again: %+v", f.Images)
	}
	if l := f.Lookup(digestN(1)); l == nil || l.Reason != "required check failed again" {
		t.Errorf("lookup after the second failure: %+v", l)
	}

	// Bounded: the oldest entries go.
	for i := 10; i < 10+MaxFailedImages; i++ {
		if err := AddFailedImage(r, "default", FailedImage{ManifestDigest: digestN(i), ID: "x.0", Time: t0, Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	f, _ = ReadFailedImages(r, "default")
	if len(f.Images) != MaxFailedImages || f.Lookup(digestN(1)) != nil || f.Lookup(digestN(10)) == nil || f.Lookup(digestN(9+MaxFailedImages)) == nil {
		t.Errorf("after %d more failures: %d entries, first %s", MaxFailedImages, len(f.Images), f.Images[0].ManifestDigest)
	}

	// Forgetting one.
	if ok, err := RemoveFailedImage(r, "default", digestN(10)); err != nil || !ok {
		t.Errorf("remove: %v, %v", ok, err)
	}
	if ok, err := RemoveFailedImage(r, "default", digestN(10)); err != nil || ok {
		t.Errorf("remove again: %v, %v", ok, err)
	}
	if got, _ := LookupFailedImage(r, "default", digestN(10)); got != nil {
		t.Errorf("removed entry still found: %+v", got)
	}
	leftovers, _ := filepath.Glob(filepath.Join(r.State("default"), ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestFailedImagesErrors(t *testing.T) {
	r := testRoot(t)
	if err := AddFailedImage(r, "default", FailedImage{Reason: "x"}); err == nil {
		t.Error("an entry without a digest was recorded")
	}
	if _, err := ReadFailedImages(r, "../x"); !errors.Is(err, layout.ErrInvalidName) {
		t.Errorf("path-like stateroot: %v", err)
	}
	// A newer format is refused rather than rewritten without the fields this code does not know.
	os.WriteFile(r.FailedImages("default"), []byte(`{"version":2,"images":[]}`), 0o644)
	if _, err := LookupFailedImage(r, "default", digestN(1)); err == nil || !strings.Contains(err.Error(), "format version 2") {
		t.Errorf("newer format: %v", err)
	}
	if err := AddFailedImage(r, "default", FailedImage{ManifestDigest: digestN(1)}); err == nil {
		t.Error("a newer record was overwritten")
	}
}
