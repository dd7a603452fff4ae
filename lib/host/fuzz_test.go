package host

import (
	"os"
	"path/filepath"
	"testing"

	"gobootc.dev/lib/fuzztest"
	"gobootc.dev/lib/spectest"
)

// FuzzParse feeds Parse what `bootc edit` reads from the user's editor or -f file. It must
// either fail with a one-line error or give a document of bootc's apiVersion and kind with a
// valid boot order, which both encodings (the YAML edit shows, the JSON status prints) carry
// back to the same document.
func FuzzParse(f *testing.F) {
	for _, s := range fuzztest.Literals(f) {
		f.Add([]byte(s))
	}
	dir, err := spectest.Dir()
	if err != nil {
		f.Fatal(err)
	}
	fixtures, _ := filepath.Glob(filepath.Join(dir, "fixtures", "*.yaml"))
	more, _ := filepath.Glob(filepath.Join(dir, "fixtures", "*.json"))
	fixtures = append(fixtures, more...)
	if len(fixtures) == 0 {
		f.Fatalf("no Host fixtures in %s", dir)
	}
	for _, p := range fixtures {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := Parse(data)
		if err != nil {
			fuzztest.OneLine(t, err)
			return
		}
		switch {
		case h.APIVersion != APIVersion && h.APIVersion != "org.containers.bootc/v1alpha1":
			t.Errorf("apiVersion %q accepted", h.APIVersion)
		case h.Kind != Kind:
			t.Errorf("kind %q accepted", h.Kind)
		case h.Spec.BootOrder != BootOrderDefault && h.Spec.BootOrder != BootOrderRollback:
			t.Errorf("boot order %q accepted", h.Spec.BootOrder)
		}
		js, err := h.MarshalCanonicalJSON()
		if err != nil {
			t.Fatalf("parsed document does not encode as JSON: %v", err)
		}
		ym, err := h.MarshalYAMLDoc()
		if err != nil {
			t.Fatalf("parsed document does not encode as YAML: %v", err)
		}
		for _, enc := range [][]byte{js, ym} {
			back, err := Parse(enc)
			if err != nil {
				t.Fatalf("encoded document does not parse back: %v\n%s", err, enc)
			}
			js2, err := back.MarshalCanonicalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if string(js2) != string(js) {
				t.Errorf("document changed through\n%s\nwas %s\nnow %s", enc, js, js2)
			}
		}
	})
}
