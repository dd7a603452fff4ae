package bootloader

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/layout"
)

// newGrubBoot is newBoot with GRUB's static configuration in place, as install leaves it.
func newGrubBoot(t *testing.T, opts Options) string {
	t.Helper()
	boot := newBoot(t)
	if err := WriteGrubConfig(boot, opts); err != nil {
		t.Fatal(err)
	}
	return boot
}

func grubVars(t *testing.T, boot string) map[string]string {
	t.Helper()
	e, err := bootcount.ReadEnv(layout.GrubEnv(boot))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, k := range []string{bootcount.VarTrial, bootcount.VarBootCounter, bootcount.VarBootSuccess} {
		if v, ok := e.Get(k); ok {
			vars[k] = v
		}
	}
	return vars
}

func grubMenuOf(t *testing.T, boot string) string {
	t.Helper()
	data, err := os.ReadFile(layout.LoaderGrubMenu(layout.Loader(boot)))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// A trial default carries the counter in its entry name for systemd-boot, is armed in grubenv
// for GRUB, and the menu counts it down; its kernel arguments are those of any other entry.
// Blessing removes the counter everywhere, once.
func TestTrial(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			boot := newGrubBoot(t, m.opts)
			a, b := dep("a.0", "aaa"), dep("b.0", "bbb")
			mustWrite(t, boot, []Deployment{a}, m.opts)
			if v := grubVars(t, boot); v != nil {
				t.Errorf("a set without trial wrote grubenv: %v", v)
			}
			b.Tries = 2
			mustWrite(t, boot, []Deployment{b, a}, m.opts)

			set, err := ReadSet(boot)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(set); strings.Join(got, ",") != "default/b.0,default/a.0" {
				t.Fatalf("ReadSet = %v", got)
			}
			if c := set[0].Counter; !c.Counted || c.Left != 2 || c.Done != 0 || !strings.HasSuffix(set[0].Entry, "+2.conf") {
				t.Errorf("trial entry %s: counter %+v, want 2 tries left", set[0].Entry, c)
			}
			if set[1].Counter.Counted {
				t.Errorf("fallback entry %s carries a counter", set[1].Entry)
			}
			if set[0].Kargs != a.Kargs || set[1].Kargs != a.Kargs {
				t.Errorf("kargs on trial %q, fallback %q; want both %q", set[0].Kargs, set[1].Kargs, a.Kargs)
			}
			want := map[string]string{bootcount.VarTrial: "default/b.0", bootcount.VarBootCounter: "2", bootcount.VarBootSuccess: "0"}
			if got := grubVars(t, boot); !equalMaps(got, want) {
				t.Errorf("grubenv = %v, want %v", got, want)
			}
			mu := grubMenuOf(t, boot)
			for _, s := range []string{`"${bootc_trial}" = default/b.0`, "set default=bootc-default-a.0",
				`"${boot_counter}" = "2"`, `"${boot_counter}" = "1"`, "set bootc_trial_args='" + TrialArgs + "'"} {
				if !strings.Contains(mu, s) {
					t.Errorf("menu lacks %q:\n%s", s, mu)
				}
			}
			if n := strings.Count(mu, "$bootc_trial_args"); n != 1 || !strings.Contains(linuxLine(t, mu, 0), "$bootc_trial_args") {
				t.Errorf("menu adds the trial arguments %d times, want once, to the first entry:\n%s", n, mu)
			}

			if changed, err := Bless(boot, "default", "b.0"); err != nil || !changed {
				t.Fatalf("Bless = %v, %v; want a change", changed, err)
			}
			set, err = ReadSet(boot)
			if err != nil {
				t.Fatal(err)
			}
			if ids(set)[0] != "default/b.0" || set[0].Counter.Counted || strings.Contains(set[0].Entry, "+") {
				t.Errorf("after Bless the default is %s (%s, %+v), want b.0 without counter", ids(set)[0], set[0].Entry, set[0].Counter)
			}
			if got := grubVars(t, boot); !equalMaps(got, map[string]string{bootcount.VarBootSuccess: "1"}) {
				t.Errorf("after Bless grubenv = %v, want only boot_success=1", got)
			}
			if changed, err := Bless(boot, "default", "b.0"); err != nil || changed {
				t.Errorf("a second Bless = %v, %v; want nothing to do", changed, err)
			}
		})
	}
}

// A set without trial written over an armed one (a rollback) ends the trial in grubenv too,
// and blessing another deployment leaves a trial alone.
func TestTrialEnded(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			boot := newGrubBoot(t, m.opts)
			a, b := dep("a.0", "aaa"), dep("b.0", "bbb")
			b.Tries = 3
			mustWrite(t, boot, []Deployment{b, a}, m.opts)
			if changed, err := Bless(boot, "default", "a.0"); err != nil || changed {
				t.Errorf("Bless of the fallback = %v, %v; want nothing to do", changed, err)
			}
			if got := grubVars(t, boot)[bootcount.VarTrial]; got != "default/b.0" {
				t.Errorf("bootc_trial = %q after blessing another deployment", got)
			}
			b.Tries = 0
			mustWrite(t, boot, []Deployment{a, b}, m.opts)
			if got := grubVars(t, boot); !equalMaps(got, map[string]string{bootcount.VarBootSuccess: "0"}) {
				t.Errorf("after a set without trial grubenv = %v, want no trial", got)
			}
			if strings.Contains(grubMenuOf(t, boot), "bootc_trial") {
				t.Errorf("a menu without trial counts:\n%s", grubMenuOf(t, boot))
			}
			names, _ := filepath.Glob(filepath.Join(layout.LoaderEntries(layout.Loader(boot)), "*+*"))
			if len(names) != 0 {
				t.Errorf("counted entries left: %v", names)
			}
		})
	}
}

// Without GRUB installed (systemd-boot alone on its ESP) no grubenv appears.
func TestTrialWithoutGrub(t *testing.T) {
	boot := newBoot(t)
	a, b := dep("a.0", "aaa"), dep("b.0", "bbb")
	b.Tries = 2
	mustWrite(t, boot, []Deployment{b, a}, Options{Mode: ModeFAT, NoFreeze: true})
	if _, err := os.Stat(layout.GrubEnv(boot)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("grubenv written with no GRUB: %v", err)
	}
	if reason := CountingUnsupported(boot); reason != "" {
		t.Errorf("CountingUnsupported = %q without GRUB", reason)
	}
}

func TestTrialRefused(t *testing.T) {
	a, b := dep("a.0", "aaa"), dep("b.0", "bbb")
	second := b
	second.Tries = 2
	only := a
	only.Tries = 2
	many := a
	many.Tries = bootcount.MaxTries + 1
	for name, set := range map[string][]Deployment{
		"not the default": {a, second},
		"nothing else":    {only},
		"too many tries":  {many, b},
	} {
		t.Run(name, func(t *testing.T) {
			boot := newGrubBoot(t, Options{})
			err := WriteSet(boot, set, Options{Mode: ModeSymlink, NoFreeze: true})
			if !errors.Is(err, ErrInvalidSet) {
				t.Errorf("WriteSet = %v, want ErrInvalidSet", err)
			}
			if _, err := os.Stat(layout.GrubEnv(boot)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused set wrote grubenv")
			}
		})
	}
}

// Whatever step a power cut interrupts, a boot loader that sees the new (trial) default also
// finds the GRUB counter armed: the new menu never boots without it.
func TestTrialArmedBeforeSwitch(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			a, b := dep("a.0", "aaa"), dep("b.0", "bbb")
			b.Tries = 2
			var steps []string
			opts := m.opts
			opts.Failpoint = func(s string) error { steps = append(steps, s); return nil }
			mustWrite(t, newGrubBoot(t, m.opts), []Deployment{b, a}, opts)
			for _, stop := range steps {
				boot := newGrubBoot(t, m.opts)
				mustWrite(t, boot, []Deployment{a}, m.opts)
				opts.Failpoint = func(s string) error {
					if s == stop {
						return errCrash
					}
					return nil
				}
				if err := WriteSet(boot, []Deployment{b, a}, opts); !errors.Is(err, errCrash) {
					t.Fatalf("stop before %q: %v", stop, err)
				}
				if ids(mustRead(t, boot))[0] == "default/b.0" && grubVars(t, boot)[bootcount.VarTrial] != "default/b.0" {
					t.Errorf("stopped before %q: the trial default is in place but grubenv is not armed", stop)
				}
			}
		})
	}
}

// linuxLine is the linux command of menu entry i.
func linuxLine(t *testing.T, menu string, i int) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(menu, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "linux ") {
			lines = append(lines, l)
		}
	}
	if i >= len(lines) {
		t.Fatalf("menu has %d linux lines:\n%s", len(lines), menu)
	}
	return lines[i]
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A --generic-image disk keeps GRUB's own files off the ESP: with Options.Grub the trial is
// armed in the grubenv next to the menu all the same, and the menu names that file, not $prefix.
func TestTrialGenericImage(t *testing.T) {
	for _, m := range []struct {
		name string
		opts Options
		env  string
	}{
		{"fat", Options{Mode: ModeFAT, NoFreeze: true, Grub: true}, "/grub/grubenv"},
		{"symlink root-fs", Options{Mode: ModeSymlink, NoFreeze: true, Grub: true}, "/boot/grub/grubenv"},
	} {
		t.Run(m.name, func(t *testing.T) {
			boot := newBoot(t)
			a, b := dep("a.0", "aaa"), dep("b.0", "bbb")
			b.Tries = 2
			mustWrite(t, boot, []Deployment{b, a}, m.opts)
			if got := grubVars(t, boot)[bootcount.VarTrial]; got != "default/b.0" {
				t.Errorf("grubenv bootc_trial = %q, want default/b.0", got)
			}
			mu := grubMenuOf(t, boot)
			if !strings.Contains(mu, "load_env -f "+m.env+" ") || strings.Count(mu, "save_env -f "+m.env+" ") != 3 {
				t.Errorf("menu does not read and write %s:\n%s", m.env, mu)
			}
		})
	}
}
