package bls

import (
	"slices"
	"testing"
)

func names(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	return out
}

// permutations calls f with every ordering of es, so a test shows the result does not depend on input
// order.
func permutations(es []Entry, f func([]Entry)) {
	var rec func(int)
	rec = func(k int) {
		if k == len(es) {
			f(slices.Clone(es))
			return
		}
		for i := k; i < len(es); i++ {
			es[k], es[i] = es[i], es[k]
			rec(k + 1)
			es[k], es[i] = es[i], es[k]
		}
	}
	rec(0)
}

func TestSort(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    []string
	}{
		{
			name: "file names only, newest first",
			entries: []Entry{
				{Name: "bootc-2.conf"}, {Name: "bootc-10.conf"}, {Name: "bootc-9.conf"},
			},
			want: []string{"bootc-10.conf", "bootc-9.conf", "bootc-2.conf"},
		},
		{
			name: "version decides within a sort-key, not the file name",
			entries: []Entry{
				{Name: "z.conf", SortKey: "fedora", Version: "6.12.0-1"},
				{Name: "a.conf", SortKey: "fedora", Version: "6.12.0-10"},
				{Name: "m.conf", SortKey: "fedora", Version: "6.12.0-9"},
			},
			want: []string{"a.conf", "m.conf", "z.conf"},
		},
		{
			name: "numeric versions compare as numbers",
			entries: []Entry{
				{Name: "ostree-1.conf", SortKey: "k", Version: "2"},
				{Name: "ostree-2.conf", SortKey: "k", Version: "10"},
			},
			want: []string{"ostree-2.conf", "ostree-1.conf"},
		},
		{
			name: "pre-release below release, patch above",
			entries: []Entry{
				{Name: "a.conf", SortKey: "k", Version: "6.12~rc1"},
				{Name: "b.conf", SortKey: "k", Version: "6.12"},
				{Name: "c.conf", SortKey: "k", Version: "6.12^p1"},
			},
			want: []string{"c.conf", "b.conf", "a.conf"},
		},
		{
			name: "sort-key ascending beats version, entries with a sort-key first",
			entries: []Entry{
				{Name: "a-10.conf", Version: "10"},
				{Name: "a-5.conf", Version: "5"},
				{Name: "b.conf", Version: "3"},
				{Name: "c.conf", SortKey: "xxxx", Version: "5"},
				{Name: "cx.conf", SortKey: "xxxx", Version: "10"},
				{Name: "d.conf", SortKey: "kkkk", Version: "100"},
			},
			want: []string{"d.conf", "cx.conf", "c.conf", "b.conf", "a-10.conf", "a-5.conf"},
		},
		{
			name: "machine-id ascending before version, missing machine-id first",
			entries: []Entry{
				{Name: "1.conf", SortKey: "k", MachineID: "bbbb", Version: "9"},
				{Name: "2.conf", SortKey: "k", MachineID: "aaaa", Version: "1"},
				{Name: "3.conf", SortKey: "k", Version: "1"},
			},
			want: []string{"3.conf", "2.conf", "1.conf"},
		},
		{
			name: "version is ignored without a sort-key",
			entries: []Entry{
				{Name: "a.conf", Version: "100"},
				{Name: "b.conf", Version: "1"},
			},
			want: []string{"b.conf", "a.conf"},
		},
		{
			name: "equal sort-key, machine-id and version fall back to the file name",
			entries: []Entry{
				{Name: "x-1.conf", SortKey: "k", Version: "1"},
				{Name: "x-3.conf", SortKey: "k", Version: "1"},
				{Name: "x-2.conf", SortKey: "k", Version: "1"},
			},
			want: []string{"x-3.conf", "x-2.conf", "x-1.conf"},
		},
		{
			name: "entries without tries left go last; the counter is not part of the name",
			entries: []Entry{
				{Name: "bootc-3+0-3.conf"},
				{Name: "bootc-2.conf"},
				{Name: "bootc-1+2-1.conf"},
				{Name: "bootc-1+3.conf"},
			},
			want: []string{"bootc-2.conf", "bootc-1+3.conf", "bootc-1+2-1.conf", "bootc-3+0-3.conf"},
		},
		{
			name: "a sort-key does not save an exhausted entry",
			entries: []Entry{
				{Name: "a+0.conf", SortKey: "a"},
				{Name: "b.conf"},
			},
			want: []string{"b.conf", "a+0.conf"},
		},
		{
			// "k+0-" is not an exhausted counter, so it is not sent to the end.
			name: "a malformed counter is part of the name",
			entries: []Entry{
				{Name: "k+x.conf"},
				{Name: "k+0-.conf"},
				{Name: "k+1.conf"},
			},
			want: []string{"k+0-.conf", "k+x.conf", "k+1.conf"},
		},
	} {
		permutations(tc.entries, func(es []Entry) {
			in := names(es)
			Sort(es)
			if got := names(es); !slices.Equal(got, tc.want) {
				t.Errorf("%s: Sort(%v) = %v; want %v", tc.name, in, got, tc.want)
			}
		})
	}
}

// The boot menu bootc writes, after systemd-boot tried the new default: while it has tries
// left it stays the default; once none are left the previous deployment is, whatever the
// versions say; a number systemd-boot would not take is no counter at all.
func TestSortBootCounting(t *testing.T) {
	entry := func(name, version string) Entry {
		return Entry{Name: name, SortKey: "bootc", Version: version, Linux: "/vmlinuz"}
	}
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    []string
	}{
		{"on trial", []Entry{entry("bootc-2.conf", "2"), entry("bootc-3+1-2.conf", "3")}, []string{"bootc-3+1-2.conf", "bootc-2.conf"}},
		{"bad", []Entry{entry("bootc-2.conf", "2"), entry("bootc-3+0-3.conf", "3")}, []string{"bootc-2.conf", "bootc-3+0-3.conf"}},
		{"bad below another bad's fallback", []Entry{
			entry("bootc-1.conf", "1"), entry("bootc-2+0-2.conf", "2"), entry("bootc-3+0-2.conf", "3"),
		}, []string{"bootc-1.conf", "bootc-3+0-2.conf", "bootc-2+0-2.conf"}},
		{"out of range", []Entry{entry("bootc-2.conf", "2"), entry("bootc-3+2147483648.conf", "3")}, []string{"bootc-3+2147483648.conf", "bootc-2.conf"}},
	} {
		permutations(tc.entries, func(es []Entry) {
			Sort(es)
			if got := names(es); !slices.Equal(got, tc.want) {
				t.Errorf("%s: Sort = %v; want %v", tc.name, got, tc.want)
			}
		})
	}
	if n := (&Entry{Name: "bootc-3+1-2.conf"}).BootName(); n.ID != "bootc-3" || n.Left != 1 || n.Done != 2 {
		t.Errorf("BootName = %+v", n)
	}
}
