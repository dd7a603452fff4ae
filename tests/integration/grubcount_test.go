package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/blockdev"
	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/layout"
	"gobootc.dev/tests/integration/vm"
)

// grubModules are GRUB's BIOS modules on this host (Debian package grub-pc-bin).
const grubModules = "/usr/lib/grub/i386-pc"

// grubTries is the tries the trial entry gets: as in the VM tests, two to save boots.
const grubTries = 2

// grubEntryTimeout bounds one GRUB run under TCG, from QEMU's start until GRUB has tried an
// entry: a few seconds, much more on a busy host.
const grubEntryTimeout = 2 * time.Minute

// The two deployments of the set: the new default on trial, and the one it falls back to.
var (
	grubTrial    = bootloader.Deployment{Stateroot: layout.DefaultStateroot, ID: "trial.0", Title: "trial", Kernel: "/bootc/trial/vmlinuz", Initrd: "/bootc/trial/initramfs.img"}
	grubPrevious = bootloader.Deployment{Stateroot: layout.DefaultStateroot, ID: "previous.0", Title: "previous", Kernel: "/bootc/previous/vmlinuz", Initrd: "/bootc/previous/initramfs.img"}
)

// TestGrubBootCounting runs the real GRUB (Debian's i386-pc build, under SeaBIOS in QEMU) on the
// menu bootloader.WriteSet generates for a default entry on trial, and reads what GRUB saved in
// grubenv after each run: the countdown, the fallback once the tries are spent, a set without
// trial ending the count, and a blessed entry that stays the default. No kernel boots: the
// kernel files are dummies, so GRUB stops at "invalid magic number" once it has chosen the
// entry, and its countdown (load_env, save_env) has run before the menu appears. A run takes
// seconds.
//
// /boot is a filesystem of its own on ext4 (as a separate /boot partition) and a directory of
// the root filesystem on xfs (as `bootc install to-disk` lays it out). GRUB cannot write its
// environment block on btrfs (save_env says "sparse file not allowed" and the counter never
// moves, so a bad entry would be retried forever): there bootloader.CountingUnsupported must
// refuse counting, which the btrfs case checks without booting.
//
// GRUB's output reaches the serial log through SeaBIOS's serial console (see package vm), so
// GRUB's configuration stays exactly as bootc writes it.
func TestGrubBootCounting(t *testing.T) {
	envtest.NeedRoot(t)
	envtest.NeedTool(t, "qemu-system-x86_64", "grub-install", "sgdisk", "partx", "losetup", "blkid",
		"mkfs.ext4", "mkfs.xfs", "mkfs.btrfs")
	if _, err := os.Stat(filepath.Join(grubModules, "modinfo.sh")); err != nil {
		envtest.Missing(t, "GRUB's BIOS modules in %s (Debian package grub-pc-bin; scripts/deps.sh installs it)", grubModules)
	}
	for _, tc := range []struct {
		fs       string
		separate bool // /boot is the filesystem's root, else its boot/ directory
	}{
		{"ext4", true},
		{"xfs", false},
	} {
		t.Run(tc.fs, func(t *testing.T) {
			d := newGrubDisk(t, tc.fs, tc.separate)
			d.countdown()
		})
	}
	t.Run("btrfs", func(t *testing.T) {
		d := newGrubDisk(t, "btrfs", false)
		boot := d.mount()
		defer d.unmount()
		reason := bootloader.CountingUnsupported(boot)
		if reason == "" {
			t.Errorf("CountingUnsupported(%s on btrfs) gives no reason; GRUB cannot save its environment block there", boot)
		} else {
			t.Logf("btrfs refused: %s", reason)
		}
	})
}

// grubDisk is a disk image with a BIOS boot partition and a filesystem holding /boot, and the
// machine that boots it.
type grubDisk struct {
	t        *testing.T
	fs       string
	separate bool
	img      string
	mnt      string
	art      string
	opts     bootloader.Options
	loop     *blockdev.Loop
	m        *vm.VM
}

// newGrubDisk partitions and formats a disk image, lays out /boot with the dummy kernels, writes
// the one-entry set and the static grub.cfg as install does, and installs GRUB's boot code.
func newGrubDisk(t *testing.T, fs string, separate bool) *grubDisk {
	t.Helper()
	work := t.TempDir()
	d := &grubDisk{t: t, fs: fs, separate: separate, img: filepath.Join(work, "disk.img"), mnt: filepath.Join(work, "mnt"), art: artifactsDir(t)}
	must(t, os.Mkdir(d.mnt, 0o755))
	must(t, os.WriteFile(d.img, nil, 0o644))
	// xfs wants 300 MiB at least.
	must(t, os.Truncate(d.img, 512<<20))
	ctx := context.Background()
	loop, err := blockdev.AttachLoop(ctx, d.img)
	must(t, err)
	d.loop = loop
	t.Cleanup(func() { d.unmount() })
	parts, err := blockdev.Partition(ctx, loop.Device, []blockdev.Part{
		{SizeMiB: 1, Type: "EF02", Name: "BIOS"},
		{Type: "8300", Name: "boot"},
	})
	must(t, err)
	must(t, blockdev.Mkfs(ctx, parts[1], fs, "boot"))
	uuid, err := blockdev.UUID(ctx, parts[1])
	must(t, err)
	d.opts = bootloader.Options{BootSeparate: separate, FSUUID: uuid, Timeout: 1}

	boot := d.mountDev(parts[1])
	for _, dep := range []bootloader.Deployment{grubTrial, grubPrevious} {
		// Not kernels: GRUB refuses them ("invalid magic number") after it chose the entry.
		for _, f := range []string{dep.Kernel, dep.Initrd} {
			p := filepath.Join(boot, f)
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte(strings.Repeat("not a kernel\n", 512)), 0o644))
		}
	}
	// What install leaves: the first deployment's entry, the static grub.cfg, GRUB's boot code.
	must(t, bootloader.WriteSet(boot, d.set(grubPrevious), d.opts))
	must(t, bootloader.WriteGrubConfig(boot, d.opts))
	if fs != "btrfs" {
		d.installGrub(boot)
	}
	d.unmount()
	return d
}

// installGrub writes GRUB's BIOS boot code to the disk and its modules under boot/grub, with a
// device map that makes the loop device GRUB's first BIOS drive, as bootc-install does.
func (d *grubDisk) installGrub(boot string) {
	t := d.t
	devMap := filepath.Join(layout.GrubDir(boot), "device.map")
	must(t, os.WriteFile(devMap, []byte("(hd0) "+d.loop.Device+"\n"), 0o644))
	out, err := exec.Command("grub-install", "--target=i386-pc", "--boot-directory="+boot, "--directory="+grubModules, d.loop.Device).CombinedOutput()
	if err != nil {
		t.Fatalf("grub-install: %v\n%s", err, out)
	}
	must(t, os.Remove(devMap))
}

// set gives each deployment the kernel arguments of a real entry.
func (d *grubDisk) set(deps ...bootloader.Deployment) []bootloader.Deployment {
	out := make([]bootloader.Deployment, len(deps))
	for i, dep := range deps {
		dep.Kargs = "root=UUID=" + d.opts.FSUUID + " rw console=ttyS0,115200n8"
		out[i] = dep
	}
	return out
}

// mount attaches the image and mounts its filesystem; it returns /boot.
func (d *grubDisk) mount() string {
	d.t.Helper()
	if d.loop == nil {
		loop, err := blockdev.AttachLoop(context.Background(), d.img)
		must(d.t, err)
		d.loop = loop
	}
	return d.mountDev(blockdev.PartitionDevice(d.loop.Device, 2))
}

func (d *grubDisk) mountDev(dev string) string {
	d.t.Helper()
	if err := unix.Mount(dev, d.mnt, d.fs, 0, ""); err != nil {
		d.t.Fatalf("mounting %s (%s) on %s: %v", dev, d.fs, d.mnt, err)
	}
	if d.separate {
		return d.mnt
	}
	boot := filepath.Join(d.mnt, "boot")
	must(d.t, os.MkdirAll(boot, 0o755))
	return boot
}

// unmount unmounts the filesystem and detaches the image, so that the machine and the next
// mount see the disk as it is: GRUB writes it behind the loop device's back.
func (d *grubDisk) unmount() {
	if mounted, _ := blockdev.IsMountpoint(d.mnt); mounted {
		if err := unix.Unmount(d.mnt, 0); err != nil {
			d.t.Fatalf("unmounting %s: %v", d.mnt, err)
		}
	}
	if d.loop != nil {
		if err := d.loop.Detach(); err != nil {
			d.t.Fatal(err)
		}
		d.loop = nil
	}
}

// countdown arms a trial of grubTries and boots until GRUB falls back, then checks that a set
// without trial ends the count and that a blessed trial entry stays the default.
func (d *grubDisk) countdown() {
	t := d.t
	boot := d.mount()
	must(t, bootloader.WriteSet(boot, d.trialSet(), d.opts))
	if reason := bootloader.CountingUnsupported(boot); reason != "" {
		t.Errorf("CountingUnsupported on %s: %s; GRUB can save its environment block there", d.fs, reason)
	}
	d.expectEnv(boot, "armed by WriteSet", map[string]string{
		bootcount.VarBootCounter: fmt.Sprint(grubTries), bootcount.VarBootSuccess: "0", bootcount.VarTrial: trialName(grubTrial)})
	d.unmount()

	// Each try counts down before GRUB boots the trial entry; the try after the last boots
	// the previous deployment and says so with -1, and so does every boot after it until the
	// set changes.
	for i, want := range []struct {
		title   string
		counter string
	}{
		{"trial", "1"},
		{"trial", "0"},
		{"previous", "-1"},
		{"previous", "-1"},
	} {
		what := fmt.Sprintf("boot %d of the trial", i+1)
		d.expectBoot(what, want.title)
		boot = d.mount()
		d.expectEnv(boot, what, map[string]string{bootcount.VarBootCounter: want.counter, bootcount.VarTrial: trialName(grubTrial)})
		d.unmount()
	}

	// The fallback made permanent, as the health check does: the previous deployment first, no
	// trial, and GRUB counts nothing any more.
	boot = d.mount()
	must(t, bootloader.WriteSet(boot, d.set(grubPrevious, grubTrial), d.opts))
	d.expectEnv(boot, "after the fallback was made permanent", map[string]string{bootcount.VarBootCounter: "", bootcount.VarTrial: ""})
	d.unmount()
	d.expectBoot("the boot after the fallback was made permanent", "previous")
	boot = d.mount()
	d.expectEnv(boot, "the boot after the fallback was made permanent", map[string]string{bootcount.VarBootCounter: "", bootcount.VarTrial: ""})

	// A new trial whose first try is blessed: the count ends and the entry stays the default.
	must(t, bootloader.WriteSet(boot, d.trialSet(), d.opts))
	d.unmount()
	d.expectBoot("the first try of a new trial", "trial")
	boot = d.mount()
	d.expectEnv(boot, "the first try of a new trial", map[string]string{bootcount.VarBootCounter: "1", bootcount.VarTrial: trialName(grubTrial)})
	changed, err := bootloader.Bless(boot, grubTrial.Stateroot, grubTrial.ID)
	must(t, err)
	if !changed {
		t.Errorf("Bless of the trial entry changed nothing")
	}
	blessed := map[string]string{bootcount.VarBootCounter: "", bootcount.VarTrial: "", bootcount.VarBootSuccess: "1"}
	d.expectEnv(boot, "after Bless", blessed)
	d.unmount()
	for i := 1; i <= 2; i++ {
		what := fmt.Sprintf("boot %d after Bless", i)
		d.expectBoot(what, "trial")
		boot = d.mount()
		d.expectEnv(boot, what, map[string]string{bootcount.VarBootCounter: "", bootcount.VarTrial: ""})
		d.unmount()
	}
}

// trialSet is the trial entry, with grubTries, before the previous one.
func (d *grubDisk) trialSet() []bootloader.Deployment {
	set := d.set(grubTrial, grubPrevious)
	set[0].Tries = grubTries
	return set
}

// trialName is how grubenv's bootc_trial names a deployment.
func trialName(dep bootloader.Deployment) string {
	return dep.Stateroot + "/" + dep.ID
}

// expectEnv checks grubenv's variables; "" means unset.
func (d *grubDisk) expectEnv(boot, when string, want map[string]string) {
	d.t.Helper()
	env, err := bootcount.ReadEnv(layout.GrubEnv(boot))
	if err != nil {
		d.t.Errorf("%s: %v", when, err)
		return
	}
	var got []string
	for _, name := range []string{bootcount.VarBootCounter, bootcount.VarBootSuccess, bootcount.VarTrial} {
		if v, ok := env.Get(name); ok {
			got = append(got, name+"="+v)
		}
	}
	for name, w := range want {
		v, ok := env.Get(name)
		switch {
		case w == "" && ok:
			d.t.Errorf("%s: grubenv sets %s=%q, want it unset (grubenv: %s)", when, name, v, strings.Join(got, " "))
		case w != "" && v != w:
			d.t.Errorf("%s: grubenv has %s=%q, want %q (grubenv: %s)", when, name, v, w, strings.Join(got, " "))
		}
	}
	d.t.Logf("%s: grubenv: %s", when, strings.Join(got, " "))
}

// grubBooting is what GRUB prints as it runs an entry.
var grubBooting = regexp.MustCompile("Booting `([^']*)'")

// expectBoot runs GRUB once and checks the entry it chose, and that its scripts printed no error
// before (a failed save_env says "error: …" and boots on).
func (d *grubDisk) expectBoot(what, wantTitle string) {
	t := d.t
	t.Helper()
	if d.m == nil {
		m, err := vm.New(vm.Config{Dir: d.art, Boot: vm.BootBIOS, Memory: 128, Disks: []vm.Disk{{Path: d.img}}, Log: t.Logf})
		must(t, err)
		d.m = m
		t.Cleanup(func() { m.Close() })
	}
	start := time.Now()
	must(t, d.m.Start())
	defer d.m.PowerCut()
	title, before, err := waitGrubEntry(d.m, grubEntryTimeout)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	t.Logf("%s: GRUB ran %q after %s (console %s)", what, title, time.Since(start).Round(100*time.Millisecond), d.m.SerialLog())
	if title != wantTitle {
		t.Errorf("%s: GRUB ran the entry %q, want %q", what, title, wantTitle)
	}
	if strings.Contains(before, "error:") {
		t.Errorf("%s: GRUB reported an error before it ran the entry:\n%s", what, before)
	}
}

// waitGrubEntry waits until the console shows GRUB running an entry and failing on the dummy
// kernel, and returns the entry's title and what GRUB printed before it.
func waitGrubEntry(m *vm.VM, timeout time.Duration) (title, before string, err error) {
	deadline := time.Now().Add(timeout)
	for {
		data, _ := os.ReadFile(m.SerialLog())
		text := ansi.ReplaceAllString(string(data), "")
		if loc := grubBooting.FindStringSubmatchIndex(text); loc != nil {
			// The entry's failure ends it: GRUB waits for a key then.
			if strings.Contains(text[loc[1]:], "Press any key to continue") {
				return text[loc[2]:loc[3]], text[:loc[0]], nil
			}
		}
		if !m.Running() {
			return "", "", fmt.Errorf("QEMU ended before GRUB ran an entry; console log %s ends:\n%s", m.SerialLog(), m.SerialTail(20))
		}
		if time.Now().After(deadline) {
			return "", "", fmt.Errorf("GRUB ran no entry within %s; console log %s ends:\n%s", timeout, m.SerialLog(), m.SerialTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ansi matches the escape sequences GRUB's menu draws with (CSI and two-character ones).
var ansi = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])`)
