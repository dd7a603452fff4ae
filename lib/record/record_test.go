package record

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
)

func testRoot(t *testing.T) layout.Root {
	dir := t.TempDir()
	r := layout.New(filepath.Join(dir, "phys"), filepath.Join(dir, "run"))
	if err := r.Init("default"); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeploymentRoundTrip(t *testing.T) {
	r := testRoot(t)
	ts := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, id := range []string{"bbb.0", "aaa.0", "aaa.1"} {
		d := &Deployment{Stateroot: "default", ID: id, Created: ts.Add(time.Duration(i) * time.Hour),
			Image: Image{Ref: host.ImageReference{Image: "x", Transport: "registry"}, ManifestDigest: "sha256:1", Version: "v" + id}}
		if err := WriteDeployment(r, d); err != nil {
			t.Fatal(err)
		}
	}
	all, err := ListDeployments(r)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range all {
		ids = append(ids, d.ID)
		if d.Version != FormatVersion {
			t.Errorf("%s: version %d", d.ID, d.Version)
		}
	}
	if strings.Join(ids, ",") != "bbb.0,aaa.0,aaa.1" {
		t.Errorf("order by creation: %v", ids)
	}
	st := all[0].Image.Status()
	if st.Version == nil || *st.Version != "vbbb.0" || st.ImageDigest != "sha256:1" {
		t.Errorf("status %+v", st)
	}
	// No temporary files are left behind by the atomic writes.
	leftovers, _ := filepath.Glob(filepath.Join(r.Deploy("default"), ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestReadErrors(t *testing.T) {
	r := testRoot(t)
	if _, err := ReadStaged(r); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing staged record: %v", err)
	}
	write := func(path, body string) {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]string{
		"newer format": `{"version":2,"stateroot":"default","id":"a"}`,
		"no version":   `{"stateroot":"default","id":"a"}`,
		"not JSON":     `{"version":1,`,
	}
	for name, body := range cases {
		write(r.Staged(), body)
		_, err := ReadStaged(r)
		if err == nil || errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	// A record must name itself: a copied or renamed record is refused.
	write(r.DeploymentRecord("default", "a.0"), `{"version":1,"stateroot":"default","id":"b.0"}`)
	if _, err := ReadDeployment(r, "default", "a.0"); err == nil {
		t.Error("record naming another deployment accepted")
	}
	if _, err := ReadDeployment(r, "default", "../../x"); !errors.Is(err, layout.ErrInvalidName) {
		t.Errorf("path-like id: %v", err)
	}
	if err := Remove(r.Staged()); err != nil {
		t.Fatal(err)
	}
	if err := Remove(r.Staged()); err != nil {
		t.Errorf("removing a missing record: %v", err)
	}
}

// --result never replaces a device node or link by a file.
func TestResultToNonRegularFile(t *testing.T) {
	if err := WriteResult("/dev/null", FetchResult{Version: "1"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat("/dev/null"); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("/dev/null is now %v (%v)", fi.Mode(), err)
	}
}

func TestResultRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "result.json")
	want := StageResult{Staged: true, ID: "a.0", GC: &StageGC{Layers: 2}}
	if err := WriteResult(p, want); err != nil {
		t.Fatal(err)
	}
	var got StageResult
	if err := ReadResult("bootc-stage", p, &got); err != nil || got.ID != "a.0" || !got.Staged || got.GC == nil || got.GC.Layers != 2 {
		t.Errorf("read back %+v, %v", got, err)
	}
	if err := ReadResult("bootc-stage", filepath.Join(t.TempDir(), "none"), &got); err == nil || !strings.Contains(err.Error(), "bootc-stage's result") {
		t.Errorf("missing result: %v", err)
	}
}
