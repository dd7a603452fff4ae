package gc_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"gobootc.dev/lib/gc"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/sysroottest"
)

// keptScenes are physical roots as the tools leave them, with the deployments each keeps.
var keptScenes = []struct {
	name  string
	setup func(s *sysroottest.Sysroot)
	want  []string
}{
	{"booted: booted, rollback, staged, pinned", func(s *sysroottest.Sysroot) {
		s.Deploy("aaaa.0", "1")
		s.Deploy("bbbb.0", "2")
		s.Deploy("cccc.0", "3")
		s.Deploy("dddd.0", "4", func(d *record.Deployment) { d.Pinned = true })
		s.Deploy("eeee.0", "5")
		s.Entries("bbbb.0", "aaaa.0")
		s.Boot("bbbb.0")
		s.Stage("eeee.0", false)
	}, []string{"default/aaaa.0", "default/bbbb.0", "default/dddd.0", "default/eeee.0"}},
	{"booted: an entry beyond the rollback", func(s *sysroottest.Sysroot) {
		s.Deploy("aaaa.0", "1")
		s.Deploy("bbbb.0", "2")
		s.Deploy("cccc.0", "3")
		s.Entries("cccc.0", "bbbb.0", "aaaa.0")
		s.Boot("cccc.0")
	}, []string{"default/aaaa.0", "default/bbbb.0", "default/cccc.0"}},
	// An installed disk, a root being prepared: the entries and the staged record still decide.
	{"not booted", func(s *sysroottest.Sysroot) {
		s.Deploy("aaaa.0", "1")
		s.Deploy("bbbb.0", "2")
		s.Deploy("cccc.0", "3")
		s.Entries("bbbb.0")
		s.Stage("cccc.0", true)
	}, []string{"default/bbbb.0", "default/cccc.0"}},
	{"not booted: a staged record without its deployment", func(s *sysroottest.Sysroot) {
		s.Deploy("aaaa.0", "1")
		s.Deploy("bbbb.0", "2")
		s.Entries("aaaa.0")
		s.Stage("ffff.0", false)
	}, []string{"default/aaaa.0"}},
	// Entries renamed by systemd-boot while it counts tries are still their deployments'.
	{"booted on trial", func(s *sysroottest.Sysroot) {
		s.Deploy("aaaa.0", "1")
		s.Deploy("bbbb.0", "2")
		s.Deploy("cccc.0", "3")
		s.Entries("cccc.0", "bbbb.0")
		renameEntry(s, "bootc-default-2.conf", "bootc-default-2+1-2.conf")
		s.Boot("cccc.0")
	}, []string{"default/bbbb.0", "default/cccc.0"}},
	{"booted after a fallback: the bad deployment is the rollback", func(s *sysroottest.Sysroot) {
		s.Deploy("aaaa.0", "1")
		s.Deploy("bbbb.0", "2")
		s.Deploy("cccc.0", "3")
		s.Entries("cccc.0", "bbbb.0")
		renameEntry(s, "bootc-default-2.conf", "bootc-default-2+0-3.conf")
		s.Boot("bbbb.0")
	}, []string{"default/bbbb.0", "default/cccc.0"}},
	{"not booted: a counted entry", func(s *sysroottest.Sysroot) {
		s.Deploy("aaaa.0", "1")
		s.Deploy("bbbb.0", "2")
		s.Entries("bbbb.0")
		renameEntry(s, "bootc-default-1.conf", "bootc-default-1+3.conf")
	}, []string{"default/bbbb.0"}},
}

// renameEntry renames an entry file as systemd-boot does when it counts a try.
func renameEntry(s *sysroottest.Sysroot, from, to string) {
	s.T.Helper()
	if err := os.Rename(filepath.Join(s.Root.Entries(), from), filepath.Join(s.Root.Entries(), to)); err != nil {
		s.T.Fatal(err)
	}
}

// Kept is the rule Run keeps by, whatever state the root is in.
func TestKept(t *testing.T) {
	for _, sc := range keptScenes {
		t.Run(sc.name, func(t *testing.T) {
			s := sysroottest.New(t)
			sc.setup(s)
			kept, err := gc.Kept(s.Root, "")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, d := range kept {
				got = append(got, d.Stateroot+"/"+d.ID)
			}
			if !reflect.DeepEqual(got, sc.want) {
				t.Errorf("Kept = %v, want %v", got, sc.want)
			}
			res, err := gc.Run(context.Background(), gc.Options{Root: s.Root, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Kept, sc.want) {
				t.Errorf("Run keeps %v, Kept says %v", res.Kept, sc.want)
			}
		})
	}
}
