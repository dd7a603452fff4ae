package assess_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/assess"
	"gobootc.dev/lib/assess/assesstest"
	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/sysroottest"
)

var loaders = []assess.Loader{assess.SystemdBoot, assess.GRUB}

// updated is a host booted into v1 (aaaa.0) that finalized v2 (bbbb.0) with 2 tries.
func updated(t *testing.T, loader assess.Loader) *assesstest.Host {
	t.Helper()
	h := assesstest.New(t, loader)
	h.Deploy("aaaa.0", "1")
	h.Deploy("bbbb.0", "2")
	h.WriteSet(0, "aaaa.0")
	if got := h.PowerOn(""); got != "aaaa.0" {
		t.Fatalf("first boot: %s", got)
	}
	h.WriteSet(2, "bbbb.0", "aaaa.0")
	return h
}

func check(t *testing.T, s *assess.State, loader assess.Loader, trial bool, left int, failed string) {
	t.Helper()
	if s.Loader != loader {
		t.Errorf("loader %s, want %s", s.Loader, loader)
	}
	if s.Trial != trial || (trial && s.TriesLeft != left) {
		t.Errorf("trial %v with %d tries left, want %v with %d", s.Trial, s.TriesLeft, trial, left)
	}
	switch {
	case failed == "" && s.Fallback != nil:
		t.Errorf("fallback from %s/%s, want none", s.Fallback.Failed.Stateroot, s.Fallback.Failed.ID)
	case failed != "" && s.Fallback == nil:
		t.Errorf("no fallback, want one from %s", failed)
	case failed != "" && (s.Fallback.Failed.ID != failed || s.Fallback.Tries != 2):
		t.Errorf("fallback from %s after %d tries, want %s after 2", s.Fallback.Failed.ID, s.Fallback.Tries, failed)
	}
}

// Each try costs one; the last one leaves 0 and is still a try; then the boot loader falls back.
func TestTrialThenFallback(t *testing.T) {
	for _, loader := range loaders {
		t.Run(string(loader), func(t *testing.T) {
			h := updated(t, loader)
			if got := h.PowerOn(""); got != "bbbb.0" {
				t.Fatalf("try 1 booted %s", got)
			}
			s := h.Load()
			check(t, s, loader, true, 1, "")
			if ok, why := s.RebootHelps(); !ok {
				t.Errorf("a reboot does not help on try 1: %s", why)
			}
			if tgt := s.FallbackTarget(); tgt == nil || tgt.ID != "aaaa.0" {
				t.Errorf("fallback target %+v", tgt)
			}
			if loader == assess.SystemdBoot {
				if s.Booted.Entry != "bootc-default-bbbb.0+1-1.conf" || s.LoaderInfo != "systemd-boot 257.9" {
					t.Errorf("booted entry %q, loader %q", s.Booted.Entry, s.LoaderInfo)
				}
			} else if trial, counter, _ := h.GrubEnv(); trial != "default/bbbb.0" || counter != "1" {
				t.Errorf("grubenv: bootc_trial=%q boot_counter=%q", trial, counter)
			}

			if got := h.PowerOn(""); got != "bbbb.0" {
				t.Fatalf("try 2 booted %s", got)
			}
			s = h.Load()
			check(t, s, loader, true, 0, "")
			if ok, why := s.RebootHelps(); !ok {
				t.Errorf("a reboot does not help on the last try: %s", why)
			}

			if got := h.PowerOn(""); got != "aaaa.0" {
				t.Fatalf("after the tries %s booted", got)
			}
			s = h.Load()
			check(t, s, loader, false, 0, "bbbb.0")
			if ok, why := s.RebootHelps(); ok || !strings.Contains(why, "not on trial") {
				t.Errorf("a reboot helps on the fallback boot (%q)", why)
			}
		})
	}
}

// A person picking the old deployment in the menu while the new one has tries left is not a
// fallback; nor is the old deployment on trial.
func TestManualPickIsNoFallback(t *testing.T) {
	for _, loader := range loaders {
		t.Run(string(loader), func(t *testing.T) {
			h := updated(t, loader)
			h.PowerOn("")
			if got := h.PowerOn("aaaa.0"); got != "aaaa.0" {
				t.Fatal(got)
			}
			s := h.Load()
			check(t, s, loader, false, 0, "")
			if ok, _ := s.RebootHelps(); ok {
				t.Error("a reboot helps a deployment not on trial")
			}
		})
	}
}

// No trial: a steady-state host, and the first boot after install.
func TestSteadyState(t *testing.T) {
	for _, loader := range loaders {
		t.Run(string(loader), func(t *testing.T) {
			h := assesstest.New(t, loader)
			h.Deploy("aaaa.0", "1")
			h.WriteSet(0, "aaaa.0")
			h.PowerOn("")
			s := h.Load()
			check(t, s, loader, false, 0, "")
			if ok, why := s.RebootHelps(); ok || why == "" {
				t.Errorf("RebootHelps = %v, %q", ok, why)
			}
			if tgt := s.FallbackTarget(); tgt != nil {
				t.Errorf("fallback target %s with one deployment", tgt.ID)
			}
		})
	}
}

// A disk carrying both boot loaders counts with the one that booted it: systemd-boot renamed the
// entry, and grubenv, armed as well, still says 2.
func TestGenericImageCountsWithTheBootingLoader(t *testing.T) {
	h := assesstest.New(t, assess.SystemdBoot)
	h.Generic()
	h.Deploy("aaaa.0", "1")
	h.Deploy("bbbb.0", "2")
	h.WriteSet(0, "aaaa.0")
	h.PowerOn("")
	h.WriteSet(2, "bbbb.0", "aaaa.0")
	if trial, counter, _ := h.GrubEnv(); trial != "default/bbbb.0" || counter != "2" {
		t.Fatalf("grubenv not armed: %q %q", trial, counter)
	}
	h.PowerOn("")
	check(t, h.Load(), assess.SystemdBoot, true, 1, "")
}

// The failed deployment's record tells why: the check its last checked boot failed, with its
// last lines, or that no boot got that far.
func TestFallbackRecord(t *testing.T) {
	now := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		health *record.Health
		reason string
		check  string
	}{
		{"kernel panic", nil, "never reached a healthy boot in 2 tries (no health check ran: the kernel or initramfs failed)", ""},
		{"check failed", redRecord(), "never reached a healthy boot in 2 tries: required check /etc/greenboot/check/required.d/50-app.sh failed (exit code '3')",
			"/etc/greenboot/check/required.d/50-app.sh"},
		{"unit failed", &record.Health{Version: 1, Verdict: record.Red}, "never reached a healthy boot in 2 tries (its health checks passed, but a unit ordered before boot-complete.target failed)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := updated(t, assess.GRUB)
			for range 3 {
				h.PowerOn("")
			}
			if tc.health != nil {
				if err := record.Write(h.Root.DeploymentHealth("default", "bbbb.0"), tc.health); err != nil {
					t.Fatal(err)
				}
			}
			s := h.Load()
			if s.Fallback == nil {
				t.Fatal("no fallback")
			}
			fi, err := s.Fallback.Record(h.Root, now)
			if err != nil {
				t.Fatal(err)
			}
			if fi.ManifestDigest != sysroottest.Digest('b') || fi.Image != sysroottest.Image || fi.Stateroot != "default" || fi.ID != "bbbb.0" ||
				!fi.Time.Equal(now) || fi.Tries != 2 || fi.Reason != tc.reason || fi.Check != tc.check {
				t.Errorf("record %+v", fi)
			}
			if tc.check != "" && !slices.Equal(fi.LastLines, []string{"app is not ready"}) {
				t.Errorf("last lines %q", fi.LastLines)
			}
		})
	}
}

func redRecord() *record.Health {
	status := 3
	return &record.Health{Version: 1, Stateroot: "default", ID: "bbbb.0", Verdict: record.Red,
		Failed: "/etc/greenboot/check/required.d/50-app.sh",
		Checks: []record.HealthCheck{{Path: "/etc/greenboot/check/required.d/50-app.sh", Kind: "required", Type: "script",
			Outcome: record.CheckFailed, ExitStatus: &status, LastLines: []string{"app is not ready"}}}}
}

// A grubenv that is not a GRUB environment block is an error, not a host without a trial; a
// missing one is no trial.
func TestGrubenvErrors(t *testing.T) {
	h := updated(t, assess.GRUB)
	h.PowerOn("")
	if err := os.WriteFile(layout.GrubEnv(h.Root.Boot), []byte("boot_counter=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := assess.Load(assess.Options{Root: h.Root, Stateroot: "default", ID: "bbbb.0", EFIVars: h.EFIVars}); err == nil || !strings.Contains(err.Error(), "grubenv") {
		t.Errorf("Load = %v", err)
	}
	if err := os.Remove(layout.GrubEnv(h.Root.Boot)); err != nil {
		t.Fatal(err)
	}
	check(t, h.Load(), assess.GRUB, false, 0, "")
}

// The counter in an entry name is what systemd-boot left; a bad entry that is booted (the last
// try) is on trial with none left.
func TestLastTryIsATrial(t *testing.T) {
	if n := bootcount.ParseName("bootc-default-bbbb.0+0-2.conf"); n.State() != bootcount.Bad {
		t.Fatalf("state %v", n.State())
	}
	h := updated(t, assess.SystemdBoot)
	h.PowerOn("")
	h.PowerOn("")
	s := h.Load()
	if s.Booted.Entry != "bootc-default-bbbb.0+0-2.conf" {
		t.Fatalf("entries %v", h.Entries())
	}
	check(t, s, assess.SystemdBoot, true, 0, "")
}

// systemd-bless-boot may remove the counter from the booted entry's name before bootc-health
// bless runs: the boot was still a counted try. A boot of an entry that is not counted is not.
func TestCountedBoot(t *testing.T) {
	h := updated(t, assess.SystemdBoot)
	h.PowerOn("")
	h.SystemdBlessBoot()
	s := h.Load()
	if s.Trial || !s.CountedBoot {
		t.Errorf("after systemd-bless-boot: trial %v, counted boot %v", s.Trial, s.CountedBoot)
	}
	h.PowerOn("")
	if s := h.Load(); s.Trial || s.CountedBoot {
		t.Errorf("the next boot: trial %v, counted boot %v", s.Trial, s.CountedBoot)
	}

	g := updated(t, assess.GRUB)
	g.PowerOn("")
	if s := g.Load(); !s.Trial || !s.CountedBoot {
		t.Errorf("GRUB try: trial %v, counted boot %v", s.Trial, s.CountedBoot)
	}
}
