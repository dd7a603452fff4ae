package bootcount

import (
	"math"
	"strconv"
	"strings"
)

// Suffix ends every entry file name; the counter is only recognised right before it.
const Suffix = ".conf"

// MaxCounter is the largest LEFT or DONE systemd-boot accepts; a larger number makes the name
// one without a counter.
const MaxCounter = math.MaxInt32

// State is where an entry stands in boot assessment.
type State int

const (
	// Blessed: the name carries no counter. The entry booted well, or was never on trial.
	Blessed State = iota
	// Trial: tries are left; the boot loader boots it and counts down.
	Trial
	// Bad: no tries left; boot loaders sort it below every other entry.
	Bad
)

func (s State) String() string {
	switch s {
	case Blessed:
		return "blessed"
	case Trial:
		return "trial"
	case Bad:
		return "bad"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Name is an entry file name split into the entry's identity and its boot counter.
type Name struct {
	// ID is the file name without Suffix and without the counter: the same for x+3.conf,
	// x+2-1.conf and x.conf.
	ID string
	// Counted says the name carries a counter; Left and Done are zero without one.
	Counted bool
	Left    int
	Done    int
}

// ParseName splits an entry file name as systemd-boot does. The counter is the text after the
// last '+', and it counts only when it is one or more digits (LEFT), optionally followed by '-'
// and one or more digits (DONE), followed by exactly Suffix, with neither number above
// MaxCounter. Anything else ("x+.conf", "x+-1.conf", "x+1-.conf", "x+1a.conf", a name not ending
// in Suffix) is a name without a counter, whose ID is the name without Suffix. (Recent
// systemd-boot also takes the suffix in other letter cases, "x+1.CONF"; the bls package reads
// only *.conf entries, and bootc writes no others.)
func ParseName(file string) Name {
	base, ok := strings.CutSuffix(file, Suffix)
	if !ok {
		return Name{ID: file}
	}
	plain := Name{ID: base}
	i := strings.LastIndexByte(base, '+')
	if i < 0 {
		return plain
	}
	leftStr, doneStr, hasDone := strings.Cut(base[i+1:], "-")
	left, ok := parseCount(leftStr)
	if !ok {
		return plain
	}
	done := 0
	if hasDone {
		if done, ok = parseCount(doneStr); !ok {
			return plain
		}
	}
	return Name{ID: base[:i], Counted: true, Left: left, Done: done}
}

// parseCount reads one or more ASCII digits (leading zeros allowed) worth at most MaxCounter.
func parseCount(s string) (int, bool) {
	if s == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > MaxCounter {
			return 0, false
		}
	}
	return n, true
}

// File is the entry file name: ID, then "+LEFT" and "-DONE" when Done is not zero, then Suffix.
// It is the canonical spelling ("x+3-0.conf" and "x+03.conf" read back as "x+3.conf"), so a
// file found on disk is renamed or removed by the name it was read under, not by this one. An
// ID that itself ends like a counter ("a+1") reads back as counted: IDs bootc makes have no '+'.
func (n Name) File() string {
	if !n.Counted {
		return n.ID + Suffix
	}
	s := n.ID + "+" + strconv.Itoa(n.Left)
	if n.Done != 0 {
		s += "-" + strconv.Itoa(n.Done)
	}
	return s + Suffix
}

// State says where the entry stands.
func (n Name) State() State {
	switch {
	case !n.Counted:
		return Blessed
	case n.Left > 0:
		return Trial
	}
	return Bad
}

// Armed is the name of a new entry on trial with tries boots to go.
func Armed(id string, tries int) Name {
	return Name{ID: id, Counted: true, Left: tries}
}

// Next is the name systemd-boot gives the entry as it boots it: one try less left (never below
// zero), one more done (never above MaxCounter). A name without a counter does not change.
func (n Name) Next() Name {
	if n.Counted {
		n.Left = max(n.Left-1, 0)
		n.Done = min(n.Done+1, MaxCounter)
	}
	return n
}

// Bless is the name systemd-bless-boot gives the entry after a good boot: no counter.
func (n Name) Bless() Name {
	return Name{ID: n.ID}
}
