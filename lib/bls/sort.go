package bls

import (
	"cmp"
	"slices"
	"strings"

	"gobootc.dev/lib/bootcount"
)

// Compare orders entries as a conforming boot loader lists them (negative: a is shown before b):
//
//  1. entries whose boot counter says no tries are left go last;
//  2. entries with a sort-key come before entries without;
//  3. between two entries with a sort-key: sort-key ascending, then machine-id ascending (a missing
//     machine-id first), then version descending (CompareVersions);
//  4. then the file name without ".conf" and without the boot counter, descending by CompareVersions,
//     so bootc-10 comes before bootc-9;
//  5. then entries without a boot counter before those with one, and between two with one, more tries
//     left first, fewer tries done first;
//  6. finally the plain file name, so the order never depends on the input order.
func Compare(a, b *Entry) int {
	ca, cb := a.BootName(), b.BootName()
	if r := cmpBool(ca.State() == bootcount.Bad, cb.State() == bootcount.Bad); r != 0 {
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
	if r := CompareVersions(cb.ID, ca.ID); r != 0 {
		return r
	}
	// Ordering uncounted against counted entries, rather than leaving them tied for the name to
	// decide, keeps the order transitive when the names and the counters disagree.
	if r := cmpBool(ca.Counted, cb.Counted); r != 0 {
		return r
	}
	if ca.Counted {
		if r := cmp.Compare(cb.Left, ca.Left); r != 0 {
			return r
		}
		if r := cmp.Compare(ca.Done, cb.Done); r != 0 {
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

// BootName splits the entry's file name into the entry's identity and its boot counter, as
// systemd-boot reads it: bootc-2+3.conf, bootc-2+1-2.conf and bootc-2.conf are all the entry
// bootc-2, on trial, on trial, and blessed.
func (e *Entry) BootName() bootcount.Name { return bootcount.ParseName(e.Name) }
