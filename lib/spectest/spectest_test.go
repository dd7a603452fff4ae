package spectest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestValidateHost(t *testing.T) {
	dir, err := Dir()
	if err != nil {
		t.Fatal(err)
	}
	good, _ := filepath.Glob(filepath.Join(dir, "fixtures", "*.DERIVED.json"))
	if len(good) == 0 {
		t.Fatal("no derived JSON fixtures found")
	}
	for _, f := range good {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateHost(b); err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
	}
	bad := map[string]string{
		"missing kind":    `{"apiVersion":"org.containers.bootc/v1"}`,
		"bad bootOrder":   `{"apiVersion":"a","kind":"b","spec":{"bootOrder":"sideways"}}`,
		"bad timestamp":   `{"apiVersion":"a","kind":"b","status":{"booted":{"incompatible":false,"pinned":false,"image":{"image":{"image":"x","transport":"registry"},"imageDigest":"d","architecture":"a","timestamp":"yesterday"}}}}`,
		"entry no pinned": `{"apiVersion":"a","kind":"b","status":{"booted":{"incompatible":false}}}`,
		"not json":        `{`,
	}
	for name, doc := range bad {
		if err := ValidateHost([]byte(doc)); err == nil {
			t.Errorf("%s: accepted %s", name, doc)
		}
	}
}

func TestValidateProgress(t *testing.T) {
	if err := ValidateProgress([]byte(`{"type":"Start","version":"0.1.0"}`)); err != nil {
		t.Errorf("start event: %v", err)
	}
	if err := ValidateProgress([]byte(`{"type":"Nope"}`)); err == nil {
		t.Error("accepted an unknown event type")
	}
}
