package cmdline

import (
	"errors"
	"testing"

	"gobootc.dev/lib/fuzztest"
)

// FuzzParse checks the promises of Parse on any text: a one-line error naming the cause, or a
// line whose rendering parses back equal and renders the same again, whose every argument
// stands alone (ParseArg of its text gives it back) and can be rebuilt from its key and value,
// and on which the key queries and edits agree with each other.
func FuzzParse(f *testing.F) {
	for _, s := range fuzztest.Literals(f) {
		f.Add(s)
	}
	for _, file := range fuzztest.Files(f, "images/*/usr/lib/bootc/kargs.d/*.toml", "images/*/files/usr/lib/bootc/kargs.d/*.toml") {
		f.Add(string(file.Data))
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := Parse(s)
		if err != nil {
			fuzztest.OneLine(t, err)
			if !errors.Is(err, ErrUnterminatedQuote) && !errors.Is(err, ErrEmptyKey) {
				t.Errorf("Parse(%q): error matches no sentinel: %v", s, err)
			}
			return
		}
		out := c.String()
		c2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) renders %q, which does not parse: %v", s, out, err)
		}
		if !c2.Equal(c) || c2.String() != out {
			t.Errorf("Parse(%q) renders %q, which reads back as %q", s, out, c2.String())
		}
		if init, ok := c.Init(); ok {
			if init2, _ := c2.Init(); init2 != init {
				t.Errorf("Parse(%q): init part %q became %q", s, init, init2)
			}
		}

		for _, a := range c.Args() {
			checkArg(t, a)
		}

		for _, a := range c.Args() {
			n := 0
			for _, b := range c.Args() {
				if KeyEqual(a.Key(), b.Key()) {
					n++
				}
			}
			if got := len(c.Get(a.Key())); got != n {
				t.Errorf("Parse(%q).Get(%q) has %d values, want %d", s, a.Key(), got, n)
			}
			if !c.Has(a.Key()) || !c.Contains(a) {
				t.Errorf("Parse(%q) does not report its own argument %q", s, a)
			}
			d := c.Clone()
			if removed := d.Remove(a.Key()); removed != n || d.Has(a.Key()) || d.Len() != c.Len()-n {
				t.Errorf("Parse(%q).Remove(%q) removed %d of %d, left %q", s, a.Key(), removed, n, d)
			}
			e := c.Clone()
			if !e.RemoveExact(a) || e.Len() != c.Len()-1 {
				t.Errorf("Parse(%q).RemoveExact(%q) left %q", s, a, e)
			}
		}
	})
}

// checkArg checks that one parsed argument is exactly one argument on its own and that the
// constructors build an equal one from its parts.
func checkArg(t *testing.T, a Arg) {
	t.Helper()
	b, err := ParseArg(a.String())
	if err != nil {
		t.Errorf("argument %q does not parse on its own: %v", a, err)
	} else if !b.Equal(a) {
		t.Errorf("argument %q reads back as key %q value %q", a, b.Key(), b.Value())
	}
	var rebuilt Arg
	if a.HasValue() {
		rebuilt, err = NewArg(a.Key(), a.Value())
	} else {
		rebuilt, err = NewFlag(a.Key())
	}
	if err != nil {
		// Keys and values holding a double quote cannot be built, only parsed: the kernel
		// has no escape character.
		if !errors.Is(err, ErrInvalidArg) && !errors.Is(err, ErrEmptyKey) {
			t.Errorf("rebuilding %q: error matches no sentinel: %v", a, err)
		}
		return
	}
	if !rebuilt.Equal(a) {
		t.Errorf("rebuilding %q gives %q", a, rebuilt)
	}
	back, err := ParseArg(rebuilt.String())
	if err != nil || !back.Equal(a) {
		t.Errorf("rebuilt %q renders %q, which reads back as %q (%v)", a, rebuilt, back, err)
	}
}

// FuzzFromArgs checks that arguments given one per --karg flag either fail with a one-line
// error or give a line that renders and parses back to the same arguments.
func FuzzFromArgs(f *testing.F) {
	lits := fuzztest.Literals(f)
	for i := range lits {
		f.Add(lits[i], lits[(i+1)%len(lits)], "quiet")
	}
	f.Add("k=a b", "--", "init args")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		cl, err := FromArgs([]string{a, b, c})
		if err != nil {
			fuzztest.OneLine(t, err)
			return
		}
		back, err := Parse(cl.String())
		if err != nil {
			t.Fatalf("FromArgs(%q, %q, %q) renders %q, which does not parse: %v", a, b, c, cl, err)
		}
		if !back.Equal(cl) {
			t.Errorf("FromArgs(%q, %q, %q) renders %q, which reads back differently", a, b, c, cl)
		}
		for _, arg := range cl.Args() {
			checkArg(t, arg)
		}
	})
}
