package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// console is a boot's serial log as SeaBIOS, GRUB and the kernel write it: GRUB's screen in
// escape sequences, then the kernel's messages, one of them its command line.
const console = "\x1b[2J\x1b[1;1HGNU GRUB  version 2.12\r\n\x1b[5;3H*v6\x1b[m   Booting `default/b2c4.0'\r\n\r\n" +
	"[    0.000000] Linux version 6.12.0-1-amd64\r\n" +
	"[    0.012345] Kernel command line: BOOT_IMAGE=/boot/bootc/sha256-ab/vmlinuz root=UUID=1-2 rw panic=10 bootc.deployment=default/b2c4.0 rd.shell=0 rd.emergency=reboot\r\n" +
	"[    1.5] Run /init as init process\r\n" +
	"[  OK  ] Reached target \x1b[0;1;39mMulti-User System\x1b[0m.\r\n" +
	"[FAILED] Failed to start \x1b[0;1;39mbootc-health.service\x1b[0m - Assess the boot.\r\n" +
	"[   40.1] reboot: Restarting system\r\n"

func TestConsoleParsing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial-1.log")
	if err := os.WriteFile(path, []byte(console), 0o644); err != nil {
		t.Fatal(err)
	}
	c := kernelCmdline(path)
	if want := "BOOT_IMAGE=/boot/bootc/sha256-ab/vmlinuz root=UUID=1-2 rw panic=10 bootc.deployment=default/b2c4.0 rd.shell=0 rd.emergency=reboot"; c != want {
		t.Errorf("kernelCmdline = %q, want %q", c, want)
	}
	if d := deploymentArg(c); d != "default/b2c4.0" {
		t.Errorf("deploymentArg = %q, want default/b2c4.0", d)
	}
	if !hasArgs(c, "rd.shell=0 rd.emergency=reboot") || hasArgs(c, "rd.shell=0 rd.emergency=halt") || hasArgs("rd.emergency=rebooted", "rd.emergency=reboot") {
		t.Errorf("hasArgs does not match whole arguments")
	}
	got := consoleHighlights(path)
	want := []string{
		"*v6   Booting `default/b2c4.0'",
		"[    0.012345] Kernel command line: " + c,
		"[  OK  ] Reached target Multi-User System.",
		"[FAILED] Failed to start bootc-health.service - Assess the boot.",
		"[   40.1] reboot: Restarting system",
	}
	if !slices.Equal(got, want) {
		t.Errorf("consoleHighlights:\n got %q\nwant %q", got, want)
	}
	if c := kernelCmdline(filepath.Join(t.TempDir(), "none")); c != "" {
		t.Errorf("kernelCmdline of a missing log = %q", c)
	}
}

// TestBadUpdatesNeedTheirImages: Run refuses BadUpdates on an Env prepared without v6 and v7,
// before it installs anything.
func TestBadUpdatesNeedTheirImages(t *testing.T) {
	e := &Env{images: LifecycleImages}
	_, err := e.Run(context.Background(), Options{Bootloader: "grub", Artifacts: t.TempDir(), Work: t.TempDir(), BadUpdates: true})
	if err == nil || !strings.Contains(err.Error(), "BadUpdates needs the images of \"all\"") {
		t.Errorf("Run: %v, want the refusal", err)
	}
}
