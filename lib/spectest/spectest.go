// Package spectest finds the published specification (the Host schema, the progress schema and
// the status fixtures) beside the checkout and validates documents against it, for tests.
package spectest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Dir returns the spec directory: $BOOTC_SPEC_DIR, or shared/spec in the nearest parent of the
// working directory that has one.
func Dir() (string, error) {
	if d := os.Getenv("BOOTC_SPEC_DIR"); d != "" {
		return d, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		p := filepath.Join(d, "shared", "spec")
		if _, err := os.Stat(filepath.Join(p, "host-v1.schema.json")); err == nil {
			return p, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no shared/spec/host-v1.schema.json above %s (set BOOTC_SPEC_DIR)", wd)
		}
	}
}

var (
	once    sync.Once
	schemas map[string]*jsonschema.Schema
	loadErr error
)

func load() {
	dir, err := Dir()
	if err != nil {
		loadErr = err
		return
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat() // date-time and friends are checked, not just annotated
	schemas = map[string]*jsonschema.Schema{}
	for _, name := range []string{"host-v1", "progress-v0"} {
		s, err := c.Compile(filepath.Join(dir, name+".schema.json"))
		if err != nil {
			loadErr = fmt.Errorf("compiling %s schema: %w", name, err)
			return
		}
		schemas[name] = s
	}
}

func validate(name string, doc []byte) error {
	once.Do(load)
	if loadErr != nil {
		return loadErr
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return schemas[name].Validate(inst)
}

// ValidateHost checks a `bootc status --format=json` document against host-v1.schema.json.
func ValidateHost(doc []byte) error { return validate("host-v1", doc) }

// ValidateProgress checks one progress event against progress-v0.schema.json.
func ValidateProgress(event []byte) error { return validate("progress-v0", event) }
