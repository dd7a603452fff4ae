package integration

import (
	"context"
	"testing"
	"time"

	"gobootc.dev/lib/spectest"
	"gobootc.dev/tests/integration/lifecycle"
)

// TestUpdates installs v1 (GRUB under SeaBIOS) and updates it without anyone at a prompt: a USB
// stick carrying v2 into the guest while it has no network, then v3 binding two application
// images (both stored before the reboot and runnable with podman after it), v4 dropping one
// (kept while the rollback binds it) through bootc-fetch-stage-updates.service, and v5 through
// bootc-fetch-apply-updates.service (the dropped image is collected once v3 is gone), with the
// units checked at every boot.
func TestUpdates(t *testing.T) {
	requireVMTests(t)
	start := time.Now()
	env := prepareImages(t)
	art := artifactsDir(t)
	rep, err := env.RunUpdates(context.Background(), lifecycle.Options{
		Bootloader:     "grub",
		Artifacts:      art,
		Work:           t.TempDir(),
		Narrator:       testNarrator{t},
		ValidateStatus: spectest.ValidateHost,
	})
	if rep != nil {
		for _, b := range rep.Boots {
			t.Logf("boot %q: %s (%s)", b.What, b.Took.Round(time.Second), b.SerialLog)
		}
		for _, tm := range rep.Timings {
			t.Logf("%s: %s", tm.Step, tm.Took.Round(time.Second))
		}
	}
	if err != nil && err != lifecycle.ErrChecksFailed {
		t.Fatal(err)
	}
	t.Logf("TestUpdates took %s; console logs of every boot: %s", time.Since(start).Round(time.Second), art)
}
