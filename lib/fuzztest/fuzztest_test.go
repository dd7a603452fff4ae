package fuzztest

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const (
	base    = "quay.io/a/b"
	pinned  = base + "@" + digestV // defined after its use: needs a second pass
	digestV = "sha256:0123"
)

func TestLiterals(t *testing.T) {
	got := Literals(t)
	for _, want := range []string{
		"quay.io/a/b@sha256:0123", // constants built from constants
		base + ":tag",             // a concatenation arrives whole
		`raw "quoted"`,
		"",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("Literals lacks %q", want)
		}
	}
	// Spelled without a literal, which would itself be gathered.
	if part := string([]byte{':', 't', 'a', 'g'}); slices.Contains(got, part) {
		t.Errorf("Literals holds %q, a part of a concatenation", part)
	}
	if !slices.IsSorted(got) {
		t.Errorf("Literals is not sorted")
	}
	_ = pinned
}

func TestFiles(t *testing.T) {
	fs := Files(t, "lib/go.mod")
	if len(fs) != 1 || fs[0].Path != "lib/go.mod" || !strings.HasPrefix(string(fs[0].Data), "module gobootc.dev/lib") {
		t.Fatalf("Files(lib/go.mod) = %+v", fs)
	}
}

func TestOneLine(t *testing.T) {
	var rec recorder
	OneLine(&rec, errors.New("reading x: bad"))
	OneLine(&rec, nil)
	if rec.failed {
		t.Errorf("a one-line error failed the test")
	}
	for _, msg := range []string{"a\nb", "a\rb"} {
		rec = recorder{}
		OneLine(&rec, errors.New(msg))
		if !rec.failed {
			t.Errorf("OneLine(%q) passed", msg)
		}
	}
}

// recorder is a testing.TB that notes a failure instead of reporting it.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }

var _ = `raw "quoted"`
