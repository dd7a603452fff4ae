package bootcount

import (
	"testing"
)

func TestParseName(t *testing.T) {
	for _, tc := range []struct {
		file  string
		want  Name
		state State
	}{
		{"bootc-2.conf", Name{ID: "bootc-2"}, Blessed},
		{"bootc-2+3.conf", Name{ID: "bootc-2", Counted: true, Left: 3}, Trial},
		{"bootc-2+2-1.conf", Name{ID: "bootc-2", Counted: true, Left: 2, Done: 1}, Trial},
		{"bootc-2+0-3.conf", Name{ID: "bootc-2", Counted: true, Left: 0, Done: 3}, Bad},
		{"bootc-2+0.conf", Name{ID: "bootc-2", Counted: true}, Bad},
		{"bootc-default-a1b2.0+1-2.conf", Name{ID: "bootc-default-a1b2.0", Counted: true, Left: 1, Done: 2}, Trial},
		// Leading zeros are numbers like any other; "-0" is a DONE of zero.
		{"x+03-007.conf", Name{ID: "x", Counted: true, Left: 3, Done: 7}, Trial},
		{"x+4-0.conf", Name{ID: "x", Counted: true, Left: 4}, Trial},
		// Only the last '+' starts the counter.
		{"a+b+2.conf", Name{ID: "a+b", Counted: true, Left: 2}, Trial},
		{"a+1+2.conf", Name{ID: "a+1", Counted: true, Left: 2}, Trial},
		{"+3.conf", Name{ID: "", Counted: true, Left: 3}, Trial},
		// The largest numbers systemd-boot takes, and one more.
		{"x+2147483647-2147483647.conf", Name{ID: "x", Counted: true, Left: MaxCounter, Done: MaxCounter}, Trial},
		{"x+2147483648.conf", Name{ID: "x+2147483648"}, Blessed},
		{"x+1-2147483648.conf", Name{ID: "x+1-2147483648"}, Blessed},
		{"x+99999999999999999999999.conf", Name{ID: "x+99999999999999999999999"}, Blessed},
		// Malformed counters are part of the name, as systemd-boot reads them.
		{"x+.conf", Name{ID: "x+"}, Blessed},
		{"x+-1.conf", Name{ID: "x+-1"}, Blessed},
		{"x+1-.conf", Name{ID: "x+1-"}, Blessed},
		{"x+1-2-3.conf", Name{ID: "x+1-2-3"}, Blessed},
		{"x+1a.conf", Name{ID: "x+1a"}, Blessed},
		{"x+ 1.conf", Name{ID: "x+ 1"}, Blessed},
		{"x++1.conf", Name{ID: "x+", Counted: true, Left: 1}, Trial},
		{"x+1.conf.conf", Name{ID: "x+1.conf"}, Blessed},
		{"x+1-2", Name{ID: "x+1-2"}, Blessed},
		{"x+1.CONF", Name{ID: "x+1.CONF"}, Blessed},
		{"x+1", Name{ID: "x+1"}, Blessed},
		{"", Name{}, Blessed},
	} {
		got := ParseName(tc.file)
		if got != tc.want {
			t.Errorf("ParseName(%q) = %+v, want %+v", tc.file, got, tc.want)
		}
		if got.State() != tc.state {
			t.Errorf("ParseName(%q).State() = %v, want %v", tc.file, got.State(), tc.state)
		}
	}
}

func TestFile(t *testing.T) {
	for _, tc := range []struct {
		n    Name
		want string
	}{
		{Name{ID: "bootc-2"}, "bootc-2.conf"},
		{Armed("bootc-2", 3), "bootc-2+3.conf"},
		{Name{ID: "bootc-2", Counted: true, Left: 2, Done: 1}, "bootc-2+2-1.conf"},
		{Name{ID: "bootc-2", Counted: true}, "bootc-2+0.conf"},
		// Left and Done mean nothing without Counted.
		{Name{ID: "bootc-2", Left: 2, Done: 1}, "bootc-2.conf"},
	} {
		if got := tc.n.File(); got != tc.want {
			t.Errorf("%+v.File() = %q, want %q", tc.n, got, tc.want)
		}
		if back := ParseName(tc.want); back.File() != tc.want {
			t.Errorf("ParseName(%q).File() = %q", tc.want, back.File())
		}
	}
	// The canonical spelling drops leading zeros and a zero DONE.
	if got := ParseName("x+03-0.conf").File(); got != "x+3.conf" {
		t.Errorf("canonical name of x+03-0.conf = %q", got)
	}
}

// A trial entry goes through the names systemd-boot gives it, keeping its ID, until no tries
// are left; blessing it drops the counter.
func TestLifecycle(t *testing.T) {
	n := ParseName(Armed("bootc-5", 3).File())
	var files []string
	for n.State() == Trial {
		n = ParseName(n.Next().File())
		files = append(files, n.File())
		if n.ID != "bootc-5" {
			t.Fatalf("ID changed to %q", n.ID)
		}
	}
	want := []string{"bootc-5+2-1.conf", "bootc-5+1-2.conf", "bootc-5+0-3.conf"}
	if len(files) != len(want) {
		t.Fatalf("tries = %v, want %v", files, want)
	}
	for i := range want {
		if files[i] != want[i] {
			t.Errorf("try %d: %s, want %s", i+1, files[i], want[i])
		}
	}
	if n.State() != Bad {
		t.Errorf("after the tries the state is %v", n.State())
	}
	// A bad entry stays bad: systemd-boot still bumps DONE, never below zero LEFT.
	if next := n.Next(); next.Left != 0 || next.Done != 4 {
		t.Errorf("Next of a bad entry = %+v", next)
	}
	if b := ParseName("bootc-5+1-2.conf").Bless(); b.File() != "bootc-5.conf" || b.State() != Blessed {
		t.Errorf("blessed name = %q (%v)", b.File(), b.State())
	}
	if u := ParseName("bootc-5.conf").Next(); u.File() != "bootc-5.conf" {
		t.Errorf("Next of an uncounted name = %q", u.File())
	}
	if top := (Name{ID: "x", Counted: true, Left: 1, Done: MaxCounter}).Next(); top.Done != MaxCounter {
		t.Errorf("DONE went past MaxCounter: %d", top.Done)
	}
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Blessed: "blessed", Trial: "trial", Bad: "bad", State(7): "State(7)"} {
		if s.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(s), s.String(), want)
		}
	}
}
