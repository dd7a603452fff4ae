package bls

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Compare orders entries as a conforming boot loader lists them (negative: a is shown before b):
//
//  1. entries whose boot counter says no tries are left go last;
//  2. entries with a sort-key come before entries without;
//  3. between two entries with a sort-key: sort-key ascending, then machine-id ascending (a missing
//     machine-id first), then version descending (CompareVersions);
//  4. then the file name without ".conf" and without the boot counter, descending by CompareVersions,
//     so bootc-10 comes before bootc-9;
//  5. then, for entries that both carry a boot counter, more tries left first, fewer tries done first;
//  6. finally the plain file name, so the order never depends on the input order.
func Compare(a, b *Entry) int {
	ca, cb := parseCounter(a.Name), parseCounter(b.Name)
	if r := cmpBool(ca.exhausted(), cb.exhausted()); r != 0 {
		return r
	}
	if r := cmpBool(a.SortKey == "", b.SortKey == ""); r != 0 {
		return r
	}
	if a.SortKey != "" {
		if r := strings.Compare(a.SortKey, b.SortKey); r != 0 {
			return r
		}
		if r := strings.Compare(a.MachineID, b.MachineID); r != 0 {
			return r
		}
		if r := CompareVersions(b.Version, a.Version); r != 0 {
			return r
		}
	}
	if r := CompareVersions(cb.id, ca.id); r != 0 {
		return r
	}
	if ca.counted && cb.counted {
		if r := cmp.Compare(cb.left, ca.left); r != 0 {
			return r
		}
		if r := cmp.Compare(ca.done, cb.done); r != 0 {
			return r
		}
	}
	return strings.Compare(a.Name, b.Name)
}

// Sort puts entries in boot menu order; entries[0] is the default.
func Sort(entries []Entry) {
	slices.SortStableFunc(entries, func(a, b Entry) int { return Compare(&a, &b) })
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// counter is the boot-assessment suffix of an entry file name, "NAME+LEFT[-DONE].conf": a boot loader
// decrements LEFT on each attempt and stops preferring the entry once it reaches zero.
type counter struct {
	id         string // file name without ".conf" and without the counter
	counted    bool
	left, done uint64
}

func (c counter) exhausted() bool { return c.counted && c.left == 0 }

func parseCounter(name string) counter {
	base := strings.TrimSuffix(name, ".conf")
	c := counter{id: base}
	i := strings.LastIndexByte(base, '+')
	if i < 0 {
		return c
	}
	leftStr, doneStr, hasDone := strings.Cut(base[i+1:], "-")
	left, err := strconv.ParseUint(leftStr, 10, 64)
	if err != nil {
		return c
	}
	var done uint64
	if hasDone {
		if done, err = strconv.ParseUint(doneStr, 10, 64); err != nil {
			return c
		}
	}
	return counter{id: base[:i], counted: true, left: left, done: done}
}
