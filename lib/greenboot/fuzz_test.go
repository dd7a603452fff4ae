package greenboot

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"gobootc.dev/lib/fuzztest"
)

// FuzzParse checks that any greenboot.conf parses without a panic into valid variable names,
// warnings of one line that name their line, and variables that, written out again, read back
// the same with no warning.
func FuzzParse(f *testing.F) {
	for _, s := range fuzztest.Literals(f) {
		f.Add([]byte(s))
	}
	for _, tc := range parseCases {
		f.Add([]byte(tc.conf))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := Parse(data)
		lines := strings.Count(string(data), "\n") + 1
		for _, w := range c.Warnings {
			var n int
			if !strings.HasPrefix(w, "line ") || strings.ContainsAny(w, "\n") {
				t.Fatalf("warning %q: want one line starting with its line number", w)
			}
			for _, r := range strings.TrimPrefix(w, "line ") {
				if r < '0' || r > '9' {
					break
				}
				n = n*10 + int(r-'0')
			}
			if n < 1 || n > lines {
				t.Errorf("warning %q names line %d of %d", w, n, lines)
			}
		}
		for name, v := range c.Vars {
			if nameLen(name) != len(name) {
				t.Errorf("variable name %q", name)
			}
			if !v.Array && len(v.Values) != 1 {
				t.Errorf("scalar %s has %d values", name, len(v.Values))
			}
		}
		out := render(c.Vars)
		back := Parse(out)
		if len(back.Warnings) != 0 {
			t.Fatalf("rendered %q warns: %q", out, back.Warnings)
		}
		if !maps.EqualFunc(c.Vars, back.Vars, func(a, b *Var) bool {
			return a.Array == b.Array && slices.Equal(a.Values, b.Values)
		}) {
			t.Fatalf("%q reads as %v, written out %q reads back as %v", data, c.Vars, out, back.Vars)
		}
	})
}
