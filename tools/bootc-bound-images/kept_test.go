package main

import (
	"context"
	"os"
	"reflect"
	"slices"
	"testing"

	"gobootc.dev/lib/gc"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/sysroottest"
)

// The bound images kept are those of the deployments the deployment collection keeps: on a
// booted host and on one that is not (where the boot entries and the staged record decide, not
// "every deployment").
func TestKeptImagesFollowGC(t *testing.T) {
	scenes := []struct {
		name  string
		setup func(s *sysroottest.Sysroot)
	}{
		{"booted", func(s *sysroottest.Sysroot) {
			s.Deploy("aaaa.0", "1")
			s.Deploy("bbbb.0", "2")
			s.Deploy("cccc.0", "3")
			s.Deploy("dddd.0", "4", func(d *record.Deployment) { d.Pinned = true })
			s.Deploy("eeee.0", "5")
			s.Entries("bbbb.0", "aaaa.0")
			s.Boot("bbbb.0")
			s.Stage("eeee.0", false)
		}},
		{"not booted", func(s *sysroottest.Sysroot) {
			s.Deploy("aaaa.0", "1")
			s.Deploy("bbbb.0", "2")
			s.Deploy("cccc.0", "3")
			s.Entries("bbbb.0")
			s.Stage("cccc.0", true)
		}},
	}
	for _, sc := range scenes {
		t.Run(sc.name, func(t *testing.T) {
			s := sysroottest.New(t)
			sc.setup(s)
			all, err := record.ListDeployments(s.Root)
			if err != nil {
				t.Fatal(err)
			}
			ref := func(d *record.Deployment) string { return "example.org/app-" + d.ID + ":1" }
			for _, d := range all {
				root := s.Root.Deployment(d.Stateroot, d.ID)
				if err := os.MkdirAll(root, 0o755); err != nil {
					t.Fatal(err)
				}
				declare(t, root, map[string]string{"app.image": ref(d)})
			}

			res, err := gc.Run(context.Background(), gc.Options{Root: s.Root, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, d := range all {
				if slices.Contains(res.Kept, d.Stateroot+"/"+d.ID) {
					want = append(want, ref(d))
				}
			}
			got, err := keptImages(s.Root, "")
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			slices.Sort(want)
			if len(want) == 0 || len(want) == len(all) {
				t.Fatalf("the scene keeps %d of %d deployments; it must keep some and drop some", len(want), len(all))
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("bound images kept: %v; the deployment collection keeps those of %v: %v", got, res.Kept, want)
			}
		})
	}
}
