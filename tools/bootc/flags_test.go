package main

import (
	"testing"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/sysroottest"
)

// frontFlags says what each flag of each verb changes, read from the code that uses it, or that
// the verb refuses it. A flag added to the grammar fails TestEveryFlagDoesSomething until it has
// an entry here.
var frontFlags = map[string]string{
	"upgrade --sysroot":         "physical root checked, locked and handed to bootc-fetch and bootc-stage",
	"upgrade --run-dir":         "per-boot state directory handed to bootc-fetch and bootc-stage",
	"upgrade --cmdline":         "command line bootc-fetch and bootc-stage find the booted deployment from",
	"upgrade --quiet":           "bootc-fetch --quiet: no progress",
	"upgrade --check":           "bootc-fetch --check only: no stage",
	"upgrade --apply":           "systemctl reboot once a deployment is staged",
	"upgrade --download-only":   "bootc-stage --download-only: not applied at shutdown",
	"upgrade --from-downloaded": "stages the download-only deployment again, without fetching",
	"upgrade --soft-reboot":     cli.NotSupported,
	"upgrade --tag":             "bootc-fetch --tag: the tracked image with another tag",
	"upgrade --progress-fd":     "bootc-fetch --progress-fd: JSON Lines progress on that descriptor",
	"upgrade --allow-failed":    "bootc-stage --allow-failed: an image that failed to boot here is staged",

	"switch --sysroot":                     "physical root checked, locked and handed to bootc-fetch and bootc-stage",
	"switch --run-dir":                     "per-boot state directory handed to bootc-fetch and bootc-stage",
	"switch --cmdline":                     "command line bootc-fetch and bootc-stage find the booted deployment from",
	"switch --quiet":                       "bootc-fetch --quiet: no progress",
	"switch --apply":                       "systemctl reboot once the deployment is staged",
	"switch --download-only":               "bootc-stage --download-only: staged, not applied at shutdown",
	"switch --soft-reboot":                 cli.NotSupported,
	"switch --transport":                   "how <target> is parsed and fetched (bootc-fetch --transport)",
	"switch --enforce-container-sigpolicy": "bootc-fetch --enforce-container-sigpolicy: the image must verify",
	"switch --retain":                      "the previously tracked image kept in the store until bootc image unretain",
	"switch --no-signature-verification":   "the default (no verification); refused with --enforce-container-sigpolicy",
	"switch --mutate-in-place":             cli.NotSupported,
	"switch --progress-fd":                 "bootc-fetch --progress-fd: JSON Lines progress on that descriptor",
	"switch --allow-failed":                "bootc-stage --allow-failed: an image that failed to boot here is staged",

	"rollback --sysroot":     "physical root whose boot entries are rewritten",
	"rollback --run-dir":     "per-boot state directory: the staged deployment discarded",
	"rollback --cmdline":     "command line the booted deployment is found from",
	"rollback --apply":       "systemctl reboot after the boot order changed",
	"rollback --trial":       "the rollback entry written on trial, tries from its own configuration",
	"rollback --soft-reboot": cli.NotSupported,

	"edit --sysroot":  "physical root whose status is edited",
	"edit --run-dir":  "per-boot state directory read for the status",
	"edit --cmdline":  "command line the booted deployment is found from",
	"edit --filename": "Host document read from the file instead of $EDITOR",
	"edit --quiet":    "no progress when the edit switches images",

	"status --sysroot": "BOOTC_SYSROOT for bootc-status",
	"status --run-dir": "BOOTC_RUN_DIR for bootc-status",
	"status --cmdline": "BOOTC_CMDLINE for bootc-status",

	"usr-overlay --sysroot":   cli.NotSupported,
	"usr-overlay --run-dir":   "where the overlay's upper directory and record live",
	"usr-overlay --cmdline":   cli.NotSupported,
	"usr-overlay --read-only": "the overlay is remounted read-only",
	"usr-overlay --usr":       "directory the overlay is mounted on",

	"install --sysroot": cli.NotSupported,
	"install --run-dir": cli.NotSupported,
	"install --cmdline": cli.NotSupported,

	"container lint --sysroot":        cli.NotSupported,
	"container lint --run-dir":        cli.NotSupported,
	"container lint --cmdline":        cli.NotSupported,
	"container lint --rootfs":         "root filesystem checked",
	"container lint --fatal-warnings": "warnings fail the check",
	"container lint --list":           "lists the checks instead of running them",
	"container lint --skip":           "checks left out",
	"container lint --no-truncate":    "every finding shown, not the first five",

	"image list --sysroot": "bootc-bound-images --sysroot: whose images are listed",
	"image list --run-dir": "bootc-bound-images --run-dir: the booted deployment's record",
	"image list --cmdline": "bootc-bound-images --cmdline: the booted deployment",
	"image list --type":    "bootc-bound-images list --type: which images",
	"image list --format":  "bootc-bound-images list --format: table or JSON",

	"image unretain --sysroot": "physical root whose retained images are let go and collected",
	"image unretain --run-dir": "per-boot state directory: the booted deployment the collection keeps",
	"image unretain --cmdline": "command line the booted deployment is found from, for the collection",
	"image unretain --all":     "every retained image let go",

	"image copy-to-storage --sysroot": cli.NotSupported,
	"image copy-to-storage --run-dir": cli.NotSupported,
	"image copy-to-storage --cmdline": cli.NotSupported,
	"image copy-to-storage --source":  cli.NotSupported,
	"image copy-to-storage --target":  cli.NotSupported,

	"offline-update --sysroot": "physical root updated",
	"offline-update --run-dir": "per-boot state directory; the stick is mounted below it",
	"offline-update --cmdline": "command line the booted deployment is found from",
	"offline-update --device":  "block device mounted read-only for the OCI layout",
	"offline-update --apply":   "upgrade or switch --apply",
	"offline-update --fs-type": "filesystem type tried alone instead of the usual list",
	"offline-update --quiet":   "upgrade or switch --quiet",
}

func TestEveryFlagDoesSomething(t *testing.T) {
	for _, p := range cli.CheckFlagTable(name, func() any { return &CLI{} }, frontFlags) {
		t.Error(p)
	}
}

// TestRootFlagsReachStatus: the root flags given before `status` select the root bootc-status
// shows, as the environment does.
func TestRootFlagsReachStatus(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Entries("aaaa.0")
	s.Boot("aaaa.0")
	r := bootc(t, -1, nil, "--sysroot="+s.Root.Phys, "--run-dir="+s.Root.Run, "status", "--json")
	h, err := host.Parse([]byte(r.stdout))
	if r.code != 0 || err != nil {
		t.Fatalf("exit %d, %v: %s%s", r.code, err, r.stdout, r.stderr)
	}
	if h.Status.Booted == nil || h.Status.Booted.Image == nil || h.Status.Booted.Image.Image.Image != sysroottest.Image {
		t.Errorf("booted %+v, want the deployment of %s", h.Status.Booted, s.Root.Phys)
	}
}
