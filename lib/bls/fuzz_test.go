package bls

import (
	"bufio"
	"errors"
	"reflect"
	"testing"

	"gobootc.dev/lib/fuzztest"
)

// FuzzParse checks that any entry file either fails with a one-line error naming the cause, or
// parses to an Entry that validates and that Marshal writes as bytes parsing back to the same
// Entry, so rewriting an entry another tool wrote loses nothing.
func FuzzParse(f *testing.F) {
	for _, s := range fuzztest.Literals(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Parse("entry.conf", data)
		if err != nil {
			fuzztest.OneLine(t, err)
			// The one other failure is a line longer than the scanner takes.
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrNoKernel) && !errors.Is(err, bufio.ErrTooLong) {
				t.Errorf("error matches no sentinel: %v", err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("parsed entry does not validate: %v\n%q", err, data)
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("parsed entry does not marshal: %v", err)
		}
		back, err := Parse("entry.conf", out)
		if err != nil {
			t.Fatalf("marshalled entry does not parse: %v\n%q", err, out)
		}
		if !reflect.DeepEqual(back, e) {
			t.Errorf("entry changed through Marshal:\n%#v\n%#v", e, back)
		}
		if again, _ := back.Marshal(); string(again) != string(out) {
			t.Errorf("Marshal is not stable:\n%q\n%q", out, again)
		}
	})
}

// FuzzCompareVersions checks that CompareVersions is a total preorder, which sorting needs:
// reflexive, antisymmetric and transitive.
func FuzzCompareVersions(f *testing.F) {
	lits := fuzztest.Literals(f)
	for i := range lits {
		f.Add(lits[i], lits[(i+1)%len(lits)], lits[(i+2)%len(lits)])
	}
	f.Fuzz(func(t *testing.T, a, b, c string) {
		checkOrder(t, "CompareVersions", CompareVersions, a, b, c)
	})
}

// FuzzCompare checks the same of the boot menu order over entries whose names (boot counters
// included), sort keys, machine IDs and versions come from the input.
func FuzzCompare(f *testing.F) {
	f.Add("bootc-2.conf", "fedora", "", "2", "bootc-10+3-1.conf", "fedora", "", "10", "bootc-1+0.conf", "", "", "")
	f.Add("a+1-2.conf", "", "m", "1", "a+2-1.conf", "", "m", "1", "a.conf", "", "m", "1")
	f.Add("x-007.conf", "k", "a", "1.0~rc1", "x-7.conf", "k", "b", "1.0", "x-7+1.conf", "k", "", "1.0")
	f.Fuzz(func(t *testing.T, n1, k1, m1, v1, n2, k2, m2, v2, n3, k3, m3, v3 string) {
		es := []*Entry{
			{Name: n1, SortKey: k1, MachineID: m1, Version: v1},
			{Name: n2, SortKey: k2, MachineID: m2, Version: v2},
			{Name: n3, SortKey: k3, MachineID: m3, Version: v3},
		}
		checkOrder(t, "Compare", Compare, es[0], es[1], es[2])
		for _, a := range es {
			for _, b := range es {
				if Compare(a, b) == 0 && a.Name != b.Name {
					t.Errorf("Compare ties distinct names %q and %q: the menu would depend on input order", a.Name, b.Name)
				}
			}
		}
	})
}

func checkOrder[T any](t *testing.T, name string, cmp func(a, b T) int, a, b, c T) {
	t.Helper()
	xs := []T{a, b, c}
	sign := func(n int) int { return min(max(n, -1), 1) }
	for _, x := range xs {
		if r := cmp(x, x); r != 0 {
			t.Errorf("%s(%v, itself) = %d", name, x, r)
		}
		for _, y := range xs {
			if sign(cmp(x, y)) != -sign(cmp(y, x)) {
				t.Errorf("%s is not antisymmetric on %v, %v: %d and %d", name, x, y, cmp(x, y), cmp(y, x))
			}
			for _, z := range xs {
				if cmp(x, y) <= 0 && cmp(y, z) <= 0 && cmp(x, z) > 0 {
					t.Errorf("%s is not transitive: %v <= %v <= %v but %v > %v", name, x, y, z, x, z)
				}
			}
		}
	}
}
