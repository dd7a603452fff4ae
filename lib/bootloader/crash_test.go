package bootloader

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"testing"
)

type crashScenario struct {
	name     string
	opts     Options
	setup    func(t *testing.T, boot string) // the state before WriteSet
	old, new []Deployment
}

var (
	depA, depB, depC, depD = dep("a.0", "aaa"), dep("b.0", "bbb"), dep("c.0", "ccc"), dep("d.0", "aaa")
)

func writeOld(set []Deployment, opts Options) func(*testing.T, string) {
	return func(t *testing.T, boot string) {
		t.Helper()
		mustWrite(t, boot, set, opts)
	}
}

func crashScenarios() []crashScenario {
	sym := Options{Mode: ModeSymlink, NoFreeze: true}
	fat := Options{Mode: ModeFAT, NoFreeze: true}
	symSep := Options{Mode: ModeSymlink, NoFreeze: true, BootSeparate: true, FSUUID: "1234-ABCD"}
	return []crashScenario{
		{"symlink/update", sym, writeOld([]Deployment{depA, depB}, sym), []Deployment{depA, depB}, []Deployment{depD, depA}},
		{"symlink/rollback", symSep, writeOld([]Deployment{depA, depB}, symSep), []Deployment{depA, depB}, []Deployment{depB, depA}},
		{"symlink/first-install", sym, func(*testing.T, string) {}, nil, []Deployment{depA}},
		{"symlink/first-install-after-layout-init", sym, func(t *testing.T, boot string) {
			// What layout.Init leaves: an empty plain loader/entries directory.
			if err := os.MkdirAll(filepath.Join(boot, "loader", "entries"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, nil, []Deployment{depA}},
		{"symlink/migrate-plain-directory", sym, writeOld([]Deployment{depA, depB, depC}, fat),
			[]Deployment{depA, depB, depC}, []Deployment{depD, depA}},
		{"fat/update", fat, func(t *testing.T, boot string) {
			mustWrite(t, boot, []Deployment{depA, depB, depC}, fat)
			// A temporary file an interrupted write left behind.
			stray := filepath.Join(boot, "loader", "entries", ".bootc-default-b.0.conf123456")
			if err := os.WriteFile(stray, []byte("title torn"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []Deployment{depA, depB, depC}, []Deployment{depD, depA, depC}},
		{"fat/reorder", fat, writeOld([]Deployment{depA, depB, depC}, fat),
			[]Deployment{depA, depB, depC}, []Deployment{depC, depA}},
		{"fat/rollback", fat, writeOld([]Deployment{depA, depB}, fat), []Deployment{depA, depB}, []Deployment{depB, depA}},
		{"fat/first-install", fat, func(*testing.T, string) {}, nil, []Deployment{depA, depB}},
	}
}

// TestCrashAtEveryStep stops WriteSet before each of its steps in turn, as a power cut would,
// and checks what the boot loader would see then, and that rerunning WriteSet completes the job
// and leaves the same tree as an uninterrupted run.
func TestCrashAtEveryStep(t *testing.T) {
	for _, sc := range crashScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			// A clean run names the steps and gives the expected final tree.
			boot := newBoot(t)
			sc.setup(t, boot)
			var steps []string
			opts := sc.opts
			opts.Failpoint = func(step string) error { steps = append(steps, step); return nil }
			mustWrite(t, boot, sc.new, opts)
			if got := mustRead(t, boot); !reflect.DeepEqual(got, sc.new) {
				t.Fatalf("clean run: ReadSet = %q, want %q", ids(got), ids(sc.new))
			}
			wantTree := normalizeTree(listTree(t, boot))
			if len(steps) < 4 || len(slices.Compact(slices.Sorted(slices.Values(steps)))) != len(steps) {
				t.Fatalf("steps are not distinct or too few: %q", steps)
			}
			t.Logf("steps: %q", steps)

			for k, step := range steps {
				boot := newBoot(t)
				sc.setup(t, boot)
				_, err := os.Stat(filepath.Join(boot, "loader", "grub.cfg"))
				hadMenu := err == nil
				calls := 0
				opts := sc.opts
				opts.Failpoint = func(string) error {
					calls++
					if calls == k+1 {
						return errCrash
					}
					return nil
				}
				if err := WriteSet(boot, sc.new, opts); !errors.Is(err, errCrash) {
					t.Fatalf("failing before %q: err = %v", step, err)
				}
				if sc.opts.Mode == ModeFAT {
					checkFATCrash(t, boot, sc, steps, k)
				} else {
					checkSymlinkCrash(t, boot, sc, steps, k, hadMenu)
				}

				rerun := sc.opts
				mustWrite(t, boot, sc.new, rerun)
				if got := mustRead(t, boot); !reflect.DeepEqual(got, sc.new) {
					t.Fatalf("rerun after a crash before %q: ReadSet = %q, want %q", step, ids(got), ids(sc.new))
				}
				if got := normalizeTree(listTree(t, boot)); !slices.Equal(got, wantTree) {
					t.Errorf("rerun after a crash before %q leaves\n%q\nwant\n%q", step, got, wantTree)
				}
			}
		})
	}
}

// checkSymlinkCrash: the set is exactly the old one until the switch and exactly the new one
// after it, and GRUB's menu always matches the entries.
func checkSymlinkCrash(t *testing.T, boot string, sc crashScenario, steps []string, k int, hadMenu bool) {
	t.Helper()
	got := mustRead(t, boot)
	want := sc.new
	if k <= slices.Index(steps, "switch") {
		want = sc.old
	}
	if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Fatalf("crash before %q: ReadSet = %q, want %q", steps[k], ids(got), ids(want))
	}
	if k <= slices.Index(steps, "switch") && !hadMenu {
		return // a first install or a plain directory being migrated: no menu yet
	}
	data, err := os.ReadFile(filepath.Join(boot, "loader", "grub.cfg"))
	if err != nil {
		t.Fatalf("crash before %q: %v", steps[k], err)
	}
	var menuIDs []string
	for _, e := range parseMenu(t, string(data)).entries {
		menuIDs = append(menuIDs, e.id)
	}
	var entryIDs []string
	for _, d := range got {
		entryIDs = append(entryIDs, "bootc-"+d.Stateroot+"-"+d.ID)
	}
	if !slices.Equal(menuIDs, entryIDs) {
		t.Errorf("crash before %q: GRUB menu %q, entries %q", steps[k], menuIDs, entryIDs)
	}
}

// checkFATCrash: every listed deployment belongs to the old or the new set, the menu is not
// empty, and the default is the old one until the new default's entry is written.
func checkFATCrash(t *testing.T, boot string, sc crashScenario, steps []string, k int) {
	t.Helper()
	got := mustRead(t, boot)
	for _, d := range got {
		if !slices.ContainsFunc(sc.old, func(o Deployment) bool { return o == d }) &&
			!slices.ContainsFunc(sc.new, func(n Deployment) bool { return n == d }) {
			t.Errorf("crash before %q: %s/%s is in neither set", steps[k], d.Stateroot, d.ID)
		}
	}
	if len(sc.old) > 0 && len(got) == 0 {
		t.Fatalf("crash before %q: no entries left", steps[k])
	}
	newDefault := slices.Index(steps, "write "+fatID(sc.new[0].Stateroot, sc.new[0].ID)+".conf")
	switch {
	case k <= newDefault && len(sc.old) == 0:
		if len(got) != 0 {
			t.Errorf("crash before %q: entries %q before any was written", steps[k], ids(got))
		}
	case k <= newDefault:
		if got[0] != sc.old[0] {
			t.Errorf("crash before %q: default %s, want the old default %s", steps[k], ids(got[:1]), ids(sc.old[:1]))
		}
	default:
		if got[0] != sc.new[0] {
			t.Errorf("crash before %q: default %s, want the new default %s", steps[k], ids(got[:1]), ids(sc.new[:1]))
		}
	}
}

var generationRe = regexp.MustCompile(`^loader\.[01]`)

// normalizeTree hides which of the two generations is live.
func normalizeTree(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = generationRe.ReplaceAllString(p, "loader.N")
	}
	slices.Sort(out)
	return out
}
