package bootloader

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"gobootc.dev/lib/bls"
	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/layout"
)

// systemd-boot renames an entry while it counts tries. ReadSet still finds the entry's
// deployment, in the order the counter gives (a bad entry last), and WriteSet replaces the
// renamed file like any other of bootc's, leaving one entry per deployment.
func TestCountedEntries(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			boot := newBoot(t)
			a, b := dep("a.0", "aaa"), dep("b.0", "bbb")
			mustWrite(t, boot, []Deployment{b, a}, m.opts)
			dir := layout.LoaderEntries(layout.Loader(boot))
			entries, err := bls.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			def := bootcount.ParseName(entries[0].Name)
			rename := func(to bootcount.Name) {
				t.Helper()
				from := entries[0].Name
				if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to.File())); err != nil {
					t.Fatal(err)
				}
				entries[0].Name = to.File()
			}

			rename(bootcount.Name{ID: def.ID, Counted: true, Left: 2, Done: 1})
			if got := ids(mustRead(t, boot)); !slices.Equal(got, []string{"default/b.0", "default/a.0"}) {
				t.Errorf("on trial: ReadSet = %v", got)
			}
			rename(bootcount.Name{ID: def.ID, Counted: true, Left: 0, Done: 3})
			if got := ids(mustRead(t, boot)); !slices.Equal(got, []string{"default/a.0", "default/b.0"}) {
				t.Errorf("bad: ReadSet = %v; want the bad entry last", got)
			}

			mustWrite(t, boot, []Deployment{a, b}, m.opts)
			if got := ids(mustRead(t, boot)); !slices.Equal(got, []string{"default/a.0", "default/b.0"}) {
				t.Errorf("after a rewrite: ReadSet = %v", got)
			}
			names, err := filepath.Glob(filepath.Join(dir, "*.conf"))
			if err != nil {
				t.Fatal(err)
			}
			if len(names) != 2 {
				t.Errorf("after a rewrite the entries are %v; want one per deployment", names)
			}
			for _, n := range names {
				if bootcount.ParseName(filepath.Base(n)).Counted {
					t.Errorf("rewritten entry %s carries a counter", filepath.Base(n))
				}
			}
		})
	}
}
