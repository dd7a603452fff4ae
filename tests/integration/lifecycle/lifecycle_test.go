package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gobootc.dev/lib/bootloader"
)

func TestTracedSteps(t *testing.T) {
	for _, tc := range []struct {
		name, console string
		want          []string
	}{
		{"none", "[  OK  ] Stopped bootc-finalize.service\r\n", nil},
		{"interleaved", "         Stopping bootc-finalize.service...\r\nfinalize:etc\n[   81.2] systemd-shutdown[1]: Syncing\r\nfinalize:entries\r\nbootloader:write bootc-default-abc.0.conf\n",
			[]string{"finalize:etc", "finalize:entries", "bootloader:write bootc-default-abc.0.conf"}},
		{"mentioned, not traced", "note: finalize:etc is a step\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tracedSteps([]byte(tc.console)); !slices.Equal(got, tc.want) {
				t.Errorf("tracedSteps = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	e := &Env{}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"bootloader", Options{Bootloader: "lilo", Artifacts: t.TempDir(), Work: t.TempDir()}, `bootloader "lilo": want grub or systemd`},
		{"no artifacts", Options{Bootloader: "grub", Work: t.TempDir()}, "Options.Artifacts and Options.Work are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestParseFailed(t *testing.T) {
	for _, tc := range []struct {
		out, state string
		failed     []string
	}{
		{"running\n", "running", nil},
		{"degraded\nfoo.service loaded failed failed Foo\nsystemd-fsck@dev-disk-by\\x2dlabel-ESP.service loaded failed failed File System Check\n",
			"degraded", []string{"foo.service", `systemd-fsck@dev-disk-by\x2dlabel-ESP.service`}},
		{"starting\n\n", "starting", nil},
	} {
		state, failed := parseFailed(tc.out)
		if state != tc.state || !slices.Equal(failed, tc.failed) {
			t.Errorf("parseFailed(%q) = %q, %q; want %q, %q", tc.out, state, failed, tc.state, tc.failed)
		}
	}
}

// TestDefaultCuts checks each boot loader's cuts against the entry writer it runs: every step
// is one finalize goes through, in finalize's order, and the default the boot loader sees at the
// step (before it runs) is the new deployment exactly when the cut says the new one boots.
func TestDefaultCuts(t *testing.T) {
	modes := map[string]bootloader.Mode{"grub": bootloader.ModeSymlink, "systemd": bootloader.ModeFAT}
	if len(DefaultCuts) != len(Bootloaders) {
		t.Errorf("DefaultCuts has %d boot loaders, Bootloaders %d", len(DefaultCuts), len(Bootloaders))
	}
	for bl, cuts := range DefaultCuts {
		t.Run(bl, func(t *testing.T) {
			mode, ok := modes[bl]
			if !ok {
				t.Fatalf("no entry writer mode known for %s", bl)
			}
			if len(cuts) < 2 || len(cuts) > 3 {
				t.Errorf("%d cuts; the VM cost allows two or three", len(cuts))
			}
			boot := filepath.Join(t.TempDir(), "boot")
			for _, d := range []string{"old", "new"} {
				dir := filepath.Join(boot, "bootc", "sha256-"+d)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				for _, f := range []string{"vmlinuz", "initramfs.img"} {
					if err := os.WriteFile(filepath.Join(dir, f), []byte(d), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			dep := func(id, digest string) bootloader.Deployment {
				return bootloader.Deployment{Stateroot: "default", ID: id, Kernel: "/bootc/sha256-" + digest + "/vmlinuz",
					Initrd: "/bootc/sha256-" + digest + "/initramfs.img", Kargs: "rw"}
			}
			prev, old, next := dep("prev.0", "old"), dep("old.0", "old"), dep("new.0", "new")
			opts := bootloader.Options{Mode: mode, NoFreeze: true}
			if err := bootloader.WriteSet(boot, []bootloader.Deployment{old, prev}, opts); err != nil {
				t.Fatal(err)
			}
			// What finalize traces: its own steps around the writer's, each with the default
			// the boot loader would pick if the power went there.
			steps := []string{"finalize:etc", "finalize:entries"}
			newDefault := []bool{false, false}
			opts.Failpoint = func(step string) error {
				set, err := bootloader.ReadSet(boot)
				if err != nil {
					t.Fatalf("at %s: %v", step, err)
				}
				steps = append(steps, "bootloader:"+step)
				newDefault = append(newDefault, len(set) > 0 && set[0].ID == next.ID)
				return nil
			}
			if err := bootloader.WriteSet(boot, []bootloader.Deployment{next, old}, opts); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, "finalize:done")
			newDefault = append(newDefault, true)
			t.Logf("steps: %q", steps)

			last := -1
			for _, c := range cuts {
				i := slices.Index(steps, c.Step)
				if i < 0 {
					t.Errorf("cut at %q: not a step finalize goes through with %s", c.Step, bl)
					continue
				}
				if i <= last {
					t.Errorf("cut at %q comes before the cut listed above it", c.Step)
				}
				last = i
				if newDefault[i] != c.NewBoots {
					t.Errorf("cut at %q: NewBoots is %v, but the new deployment is the default there: %v", c.Step, c.NewBoots, newDefault[i])
				}
			}
			if cuts[0].NewBoots || !cuts[len(cuts)-1].NewBoots {
				t.Errorf("the cuts do not span the switch: %+v", cuts)
			}
		})
	}
}
