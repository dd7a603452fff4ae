package host

import (
	"strings"
	"testing"
)

func TestSignatureForms(t *testing.T) {
	cases := []struct {
		name, doc     string
		json, yamlSub string
	}{
		{"insecure", "image: {image: x, transport: registry, signature: insecure}", `"signature":"insecure"`, "signature: insecure"},
		{"policy", "image: {image: x, transport: registry, signature: containerPolicy}", `"signature":"containerPolicy"`, "signature: containerPolicy"},
		{"remote tag", "image: {image: x, transport: registry, signature: !ostreeRemote \"fedora\"}", `"signature":{"ostreeRemote":"fedora"}`, `signature: !ostreeRemote "fedora"`},
		{"remote map", `image: {image: x, transport: registry, signature: {ostreeRemote: fedora}}`, `"signature":{"ostreeRemote":"fedora"}`, `signature: !ostreeRemote "fedora"`},
		{"absent", "image: {image: x, transport: registry}", `"image":{"image":"x","transport":"registry"}`, "transport: registry\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h, err := Parse([]byte("apiVersion: org.containers.bootc/v1\nkind: BootcHost\nspec:\n  " + c.doc + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			js, err := h.MarshalCanonicalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(js), c.json) {
				t.Errorf("JSON %s lacks %s", js, c.json)
			}
			ym, err := h.MarshalYAMLDoc()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(ym), c.yamlSub) {
				t.Errorf("YAML lacks %q:\n%s", c.yamlSub, ym)
			}
			// Both encodings read back to the same document.
			for _, enc := range [][]byte{js, ym} {
				back, err := Parse(enc)
				if err != nil {
					t.Fatal(err)
				}
				js2, _ := back.MarshalCanonicalJSON()
				if string(js2) != string(js) {
					t.Errorf("round trip changed the document:\n%s\n%s", js, js2)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]string{
		"wrong apiVersion": "apiVersion: v2\nkind: BootcHost\n",
		"wrong kind":       "apiVersion: org.containers.bootc/v1\nkind: Pod\n",
		"bad boot order":   "apiVersion: org.containers.bootc/v1\nkind: BootcHost\nspec: {bootOrder: sideways}\n",
		"bad signature":    "apiVersion: org.containers.bootc/v1\nkind: BootcHost\nspec: {image: {image: x, transport: registry, signature: maybe}}\n",
		"bad remote map":   "apiVersion: org.containers.bootc/v1\nkind: BootcHost\nspec: {image: {image: x, transport: registry, signature: {remote: x}}}\n",
		"bad JSON sig":     `{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","spec":{"image":{"image":"x","transport":"registry","signature":{"ostreeRemote":"a","x":1}}}}`,
		"not YAML":         "{[",
		"empty":            "",
	}
	for name, doc := range cases {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line: %q", name, err)
		}
	}
}

func TestNewIsEmptyHost(t *testing.T) {
	js, err := New().MarshalCanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"apiVersion":"org.containers.bootc/v1","kind":"BootcHost","metadata":{"name":"host"},"spec":{"bootOrder":"default","image":null},"status":{"booted":null,"readOnly":false,"rollback":null,"rollbackQueued":false,"staged":null,"type":null,"usrOverlay":null}}`
	if string(js) != want {
		t.Errorf("got  %s\nwant %s", js, want)
	}
}
