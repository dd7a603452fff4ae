package integration

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/spectest"
	"gobootc.dev/tests/integration/lifecycle"
)

// testNarrator sends the lifecycle's narration to the test log and its failed checks to
// t.Errorf.
type testNarrator struct{ t *testing.T }

func (n testNarrator) Step(title, about string) {
	n.t.Helper()
	n.t.Logf("=== %s: %s", title, about)
}

func (n testNarrator) Show(label, text string) {
	n.t.Helper()
	n.t.Logf("%s:\n%s", label, strings.TrimRight(text, "\n"))
}

func (n testNarrator) Logf(format string, args ...any) {
	n.t.Helper()
	n.t.Logf(format, args...)
}

func (n testNarrator) Errorf(format string, args ...any) {
	n.t.Helper()
	n.t.Errorf(format, args...)
}

// prepareImages builds the sample images and publishes them on a registry that is stopped
// when the test ends.
func prepareImages(t *testing.T) *lifecycle.Env {
	t.Helper()
	env, err := lifecycle.Prepare(context.Background(), repoRoot(t), t.TempDir(), testNarrator{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Close(); err != nil {
			t.Errorf("stopping the registry: %v", err)
		}
	})
	t.Logf("images built (or found current) in %s", env.Build.Round(time.Second))
	return env
}

// TestLifecycle installs the sample image v1 from inside its container to a disk image, boots
// it under QEMU, upgrades to v2 from a registry, checks that local /etc changes stay, v2's
// /etc default and kargs.d arguments arrive and /var persists, rolls back, and cuts the power
// at the finalize steps of lifecycle.DefaultCuts (finalize blocks there and signals the host),
// checking after each cut which deployment boots, and that an upgrade then runs through, then
// applies two bad updates (a required health check fails; the kernel panics) that must fall
// back by themselves in the tries + 1 boots: with GRUB under SeaBIOS and systemd-boot under
// OVMF. Every boot that stays up must leave no failed unit. Each variant's recovery.json (in
// its artifacts) has the boots and seconds each bad update took to heal.
// BOOTC_LIFECYCLE_BOOTLOADERS (comma-separated) picks the variants; BOOTC_LIFECYCLE_POWER_CUT=0
// leaves the power cuts out, BOOTC_LIFECYCLE_BAD_UPDATES=0 the bad updates.
func TestLifecycle(t *testing.T) {
	requireVMTests(t)
	start := time.Now()
	ctx := context.Background()
	env := prepareImages(t)

	variants := []string{"grub", "systemd"}
	if v := os.Getenv("BOOTC_LIFECYCLE_BOOTLOADERS"); v != "" {
		variants = strings.Split(v, ",")
	}
	var summary []string
	for _, bl := range variants {
		t.Run(bl, func(t *testing.T) {
			art := artifactsDir(t)
			rep, err := env.Run(ctx, lifecycle.Options{
				Bootloader:     bl,
				Artifacts:      art,
				Work:           t.TempDir(),
				PowerCut:       os.Getenv("BOOTC_LIFECYCLE_POWER_CUT") != "0",
				BadUpdates:     os.Getenv("BOOTC_LIFECYCLE_BAD_UPDATES") != "0",
				Narrator:       testNarrator{t},
				ValidateStatus: spectest.ValidateHost,
			})
			if rep != nil {
				line := fmt.Sprintf("%s: %d boots", bl, len(rep.Boots))
				for _, b := range rep.Boots {
					t.Logf("boot %q: %s (%s)", b.What, b.Took.Round(time.Second), b.SerialLog)
				}
				for _, tm := range rep.Timings {
					line += fmt.Sprintf(", %s %s", tm.Step, tm.Took.Round(time.Second))
				}
				if rep.PowerCut != "" {
					t.Logf("power cut: %s", rep.PowerCut)
					line += "; power cut " + rep.PowerCut
				}
				for _, rc := range rep.Recoveries {
					line += fmt.Sprintf("; bad update %s healed in %d boots (target %d), %s", rc.Image, rc.Boots, rc.Target, rc.Took.Round(time.Second))
				}
				summary = append(summary, line)
			}
			if err != nil && err != lifecycle.ErrChecksFailed {
				t.Fatal(err)
			}
			t.Logf("console logs of every boot: %s", art)
		})
	}
	t.Logf("TestLifecycle took %s\n%s", time.Since(start).Round(time.Second), strings.Join(summary, "\n"))
}
