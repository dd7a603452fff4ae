package integration

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/kargs"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/spectest"
	"gobootc.dev/tests/integration/lifecycle"
	"gobootc.dev/tests/integration/vm"
)

// handDisk is a whole-disk ext4 file system laid out by hand the way bootc lays out a physical
// root, with one deployment of the sample image.
type handDisk struct {
	Path      string
	UUID      string
	Stateroot string
	ID        string
	Kernel    string // copied out of the deployment for direct kernel boot
	Initrd    string
	Kargs     string // the image's kargs.d arguments
	Digest    string
}

// buildHandDisk exports the image's root file system into a deployment and makes the disk with
// mkfs.ext4 -d, so no loop device or partition table is needed.
func buildHandDisk(t *testing.T, image, workDir string) handDisk {
	t.Helper()
	digest := run(t, "podman", "image", "inspect", "--format", "{{.Digest}}", image)
	hexDigest, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexDigest) != 64 {
		t.Fatalf("image %s has digest %q", image, digest)
	}
	d := handDisk{Stateroot: layout.DefaultStateroot, ID: hexDigest[:12] + ".0", Digest: digest}
	tree := filepath.Join(workDir, "tree")
	r := layout.New(tree, "")
	if err := r.Init(d.Stateroot); err != nil {
		t.Fatal(err)
	}
	dep := r.Deployment(d.Stateroot, d.ID)
	mnt := run(t, "podman", "image", "mount", image)
	defer run(t, "podman", "image", "unmount", image)
	run(t, "cp", "-a", mnt+"/.", dep+"/")

	// The image's /etc stays pristine at usr/etc; the deployment's writable copy and the shared
	// /var live under bootc/state.
	run(t, "mv", dep+"/etc", dep+"/usr/etc")
	must(t, os.Mkdir(dep+"/etc", 0o755))
	etc := r.Etc(d.Stateroot, d.ID)
	must(t, os.MkdirAll(filepath.Dir(etc), 0o700))
	run(t, "cp", "-a", dep+"/usr/etc", etc)
	must(t, os.Remove(r.Var(d.Stateroot)))
	run(t, "mv", dep+"/var", r.Var(d.Stateroot))
	must(t, os.Mkdir(dep+"/var", 0o755))

	kvers, err := os.ReadDir(dep + "/usr/lib/modules")
	if err != nil || len(kvers) != 1 {
		t.Fatalf("want one kernel in the image: %v %v", kvers, err)
	}
	kver := kvers[0].Name()
	d.Kernel = filepath.Join(workDir, "vmlinuz")
	d.Initrd = filepath.Join(workDir, "initramfs.img")
	bootDigest := sha256.New()
	for src, dst := range map[string]string{"vmlinuz": d.Kernel, "initramfs.img": d.Initrd} {
		data, err := os.ReadFile(filepath.Join(dep, "usr/lib/modules", kver, src))
		must(t, err)
		must(t, os.WriteFile(dst, data, 0o644))
	}
	for _, f := range []string{d.Kernel, d.Initrd} {
		fh, err := os.Open(f)
		must(t, err)
		io.Copy(bootDigest, fh)
		fh.Close()
	}

	set, err := kargs.Load(dep, "x86_64")
	must(t, err)
	var args []string
	for _, a := range set.Args {
		args = append(args, a.String())
	}
	d.Kargs = strings.Join(args, " ")
	if !strings.Contains(d.Kargs, "console=ttyS0") {
		t.Fatalf("the image's kargs.d gives %q, want a serial console", d.Kargs)
	}

	uuid := make([]byte, 16)
	rand.Read(uuid)
	uuid[6] = uuid[6]&0x0f | 0x40
	uuid[8] = uuid[8]&0x3f | 0x80
	h := hex.EncodeToString(uuid)
	d.UUID = h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
	created := time.Now().UTC().Truncate(time.Second)
	must(t, record.WriteDeployment(r, &record.Deployment{
		Stateroot: d.Stateroot,
		ID:        d.ID,
		Image: record.Image{
			Ref:            host.ImageReference{Image: image, Transport: "containers-storage"},
			ManifestDigest: digest,
			Architecture:   "amd64",
			Version:        "1",
		},
		Kernel:     kver,
		BootDigest: "sha256:" + hex.EncodeToString(bootDigest.Sum(nil)),
		Kargs:      "root=UUID=" + d.UUID + " rw " + d.Kargs,
		Created:    created,
	}))

	d.Path = filepath.Join(workDir, "disk.img")
	must(t, os.WriteFile(d.Path, nil, 0o644))
	must(t, os.Truncate(d.Path, 4<<30))
	run(t, "mkfs.ext4", "-q", "-F", "-L", "root", "-U", d.UUID, "-d", tree, d.Path)
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mountInfo is one line of /proc/self/mountinfo: mount point, root within the file system,
// per-mount options.
type mountInfo struct{ Point, Root, Opts string }

func parseMountInfo(text string) map[string]mountInfo {
	out := map[string]mountInfo{}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		out[f[4]] = mountInfo{Point: f[4], Root: f[3], Opts: f[5]}
	}
	return out
}

func hasOpt(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// TestBootPath boots a disk laid out by hand in the bootc layout and checks, at every boot, that
// no unit failed and the mounts the initramfs made; that /etc and /var persist across a reboot,
// and what `bootc status` says. Then it boots a deployment that does not exist: the initramfs
// stops in the emergency shell, unless the boot is on trial (GRUB's arguments on the command
// line, or systemd-boot's EFI variable for a counted entry), when it resets.
func TestBootPath(t *testing.T) {
	requireVMTests(t)
	start := time.Now()
	image := sampleImage(t, "v1")
	art := artifactsDir(t)
	work := t.TempDir()
	d := buildHandDisk(t, image, work)
	t.Logf("disk assembled in %s (deployment %s/%s)", time.Since(start).Round(time.Second), d.Stateroot, d.ID)

	karg := layout.DeploymentKarg + "=" + layout.DeploymentKargValue(d.Stateroot, d.ID)
	appendLine := "root=UUID=" + d.UUID + " rw " + d.Kargs + " " + karg + " panic=10"
	m, err := vm.New(vm.Config{
		Dir: art, Kernel: d.Kernel, Initrd: d.Initrd, Append: appendLine,
		Disks: []vm.Disk{{Path: d.Path}},
		Log:   t.Logf,
	})
	must(t, err)
	defer m.Close()
	g := guest{t: t, vm: m}
	ctx := context.Background()

	must(t, m.Start())
	bootStart := time.Now()
	must(t, m.WaitBoot(ctx, 0))
	t.Logf("boot 1 took %s", time.Since(bootStart).Round(time.Second))

	checkBooted := func(boot int) {
		t.Helper()
		var b record.Booted
		must(t, json.Unmarshal([]byte(g.mustSh("cat /run/bootc/booted.json")), &b))
		if b.Version != 1 || b.Stateroot != d.Stateroot || b.ID != d.ID {
			t.Errorf("boot %d: booted.json = %+v, want %s/%s", boot, b, d.Stateroot, d.ID)
		}
		c, err := cmdline.Parse(strings.TrimSpace(g.mustSh("cat /proc/cmdline")))
		must(t, err)
		if got := c.Get(layout.DeploymentKarg); len(got) != 1 || got[0] != layout.DeploymentKargValue(d.Stateroot, d.ID) {
			t.Errorf("boot %d: /proc/cmdline has %s=%v", boot, layout.DeploymentKarg, got)
		}

		// The mounts: / is the deployment, read-only; /etc and /var its state, writable; the
		// physical root at /sysroot, read-only.
		mounts := parseMountInfo(g.mustSh("cat /proc/self/mountinfo"))
		depRoot := "/bootc/deploy/" + d.Stateroot + "/" + d.ID
		for _, w := range []struct {
			point, root string
			ro          bool
		}{
			{"/", depRoot, true},
			{"/etc", "/bootc/state/" + d.Stateroot + "/" + d.ID + "/etc", false},
			{"/var", "/bootc/state/" + d.Stateroot + "/var", false},
			{"/sysroot", "/", true},
		} {
			mi, ok := mounts[w.point]
			if !ok {
				t.Errorf("boot %d: %s is not a mount point", boot, w.point)
				continue
			}
			if mi.Root != w.root {
				t.Errorf("boot %d: %s mounts %s of the file system, want %s", boot, w.point, mi.Root, w.root)
			}
			if hasOpt(mi.Opts, "ro") != w.ro {
				t.Errorf("boot %d: %s has options %s, want read-only=%v", boot, w.point, mi.Opts, w.ro)
			}
		}
		for _, p := range []string{"/", "/usr", "/usr/lib", "/sysroot", "/sysroot/bootc"} {
			_, errOut, code := g.sh("touch " + p + "/.bootc-probe")
			if code == 0 || !strings.Contains(errOut, "Read-only file system") {
				t.Errorf("boot %d: writing in %s: exit %d, %q; want EROFS", boot, p, code, errOut)
			}
		}
		for _, p := range []string{"/etc", "/var", "/var/tmp"} {
			if _, errOut, code := g.sh("touch " + p + "/.bootc-probe && rm " + p + "/.bootc-probe"); code != 0 {
				t.Errorf("boot %d: %s not writable: %s", boot, p, errOut)
			}
		}
		for _, unit := range []string{"qemu-guest-agent.service", "bootc-remount.service"} {
			if out, _, _ := g.sh("systemctl is-active " + unit); strings.TrimSpace(out) != "active" {
				t.Errorf("boot %d: %s is %q", boot, unit, strings.TrimSpace(out))
			}
		}
		if err := lifecycle.CheckUnits(ctx, m); err != nil {
			t.Errorf("boot %d: %v", boot, err)
		}
	}
	checkBooted(1)

	// bootc status shows the booted image from the deployment record.
	out := g.mustSh("bootc status --format=json")
	if err := spectest.ValidateHost([]byte(out)); err != nil {
		t.Errorf("bootc status --format=json does not match the schema: %v\n%s", err, out)
	}
	h, err := host.Parse([]byte(out))
	must(t, err)
	if b := h.Status.Booted; b == nil || b.Image == nil || b.Image.Image.Image != image || b.Image.ImageDigest != d.Digest {
		t.Errorf("bootc status booted entry = %+v, want %s@%s\n%s", b, image, d.Digest, out)
	}

	// Files written to /etc and /var survive a clean reboot. A / line in /etc/fstab makes
	// systemd-remount-fs remount / read-write (a non-bind remount, which clears the read-only
	// flag of the / mount); bootc-remount.service must make it read-only again.
	token := hex.EncodeToString([]byte(time.Now().Format(time.RFC3339Nano)))
	g.mustSh("echo " + token + " >/etc/bootc-test-persist && echo " + token + " >/var/lib/bootc-test-persist && " +
		"echo 'UUID=" + d.UUID + " / ext4 defaults 0 0' >>/etc/fstab && sync")
	rebootStart := time.Now()
	must(t, m.Reboot(ctx))
	must(t, m.WaitBoot(ctx, 0))
	t.Logf("reboot took %s", time.Since(rebootStart).Round(time.Second))
	for _, f := range []string{"/etc/bootc-test-persist", "/var/lib/bootc-test-persist"} {
		if got := strings.TrimSpace(g.mustSh("cat " + f)); got != token {
			t.Errorf("after reboot %s = %q, want %q", f, got, token)
		}
	}
	checkBooted(2)
	if out := g.mustSh("journalctl -b --no-pager -o cat -u bootc-remount.service"); !strings.Contains(out, "made / read-only again") {
		t.Errorf("with / in fstab, bootc-remount.service did not re-apply the read-only flag:\n%s", out)
	}
	// The writes landed in the deployment's state, not in the image's pristine /etc.
	if _, _, code := g.sh("test -e /usr/etc/bootc-test-persist"); code == 0 {
		t.Error("/usr/etc received a file written to /etc")
	}
	if got := strings.TrimSpace(g.mustSh("cat /sysroot/bootc/state/" + d.Stateroot + "/" + d.ID + "/etc/bootc-test-persist")); got != token {
		t.Errorf("the writable /etc is not the deployment's state directory: %q", got)
	}

	// A power cut after a sync keeps the data; the next boot says `ro` instead of `rw`: the
	// initramfs makes the file system writable for /etc and /var all the same. This boot goes
	// through UEFI firmware (still a direct kernel boot), so the guest has EFI variables: it
	// stores the one systemd-boot sets for an entry on trial, for the last boot below.
	g.mustSh("sed -i '\\| / ext4 |d' /etc/fstab && echo cut >/var/lib/bootc-test-cut && sync")
	must(t, m.PowerCut())
	biosCfg := m.Config()
	biosCfg.Append = strings.Replace(biosCfg.Append, " rw ", " ro ", 1)
	uefiCfg := biosCfg
	uefiCfg.Extra = append(append([]string(nil), biosCfg.Extra...), uefiFirmware(t, work)...)
	m.SetConfig(uefiCfg)
	must(t, m.Start())
	must(t, m.WaitBoot(ctx, 0))
	if got := strings.TrimSpace(g.mustSh("cat /var/lib/bootc-test-cut /etc/bootc-test-persist")); got != "cut\n"+token {
		t.Errorf("after the power cut: %q", got)
	}
	checkBooted(3)
	if log, _ := os.ReadFile(m.SerialLog()); !strings.Contains(string(log), "remounting the physical root /sysroot read-write") {
		t.Errorf("with ro on the kernel command line the initramfs did not make the file system writable (%s)", m.SerialLog())
	}
	// A non-volatile copy of LoaderBootCountPath (systemd-boot's is volatile), for boot 6.
	g.mustSh("printf '" + efiVarEscaped(trialEntry) + "' >/run/bootc-test-efivar && " +
		"cat /run/bootc-test-efivar >" + efivarsDir + "/" + bootCountPathVar + " && ls " + efivarsDir + "/" + bootCountPathVar)
	must(t, m.Shutdown(ctx, "powerdown"))

	// A deployment that does not exist stops the boot in the initramfs with a clear message; a
	// boot that is not on trial waits in the emergency shell for a person.
	missing := func(c vm.Config) vm.Config {
		c.Append = strings.Replace(c.Append, karg, layout.DeploymentKarg+"=default/missing.0", 1)
		return c
	}
	m.SetConfig(missing(biosCfg))
	must(t, m.Start())
	err = m.WaitBoot(ctx, 0)
	if !errors.Is(err, vm.ErrEmergency) {
		t.Errorf("booting a missing deployment: got %v, want emergency mode", err)
	}
	log, _ := os.ReadFile(m.SerialLog())
	for _, want := range []string{
		setupFailed,
		"choose another boot entry",
	} {
		if !strings.Contains(string(log), want) {
			t.Errorf("console of the failed boot lacks %q (%s)", want, m.SerialLog())
		}
	}
	must(t, m.PowerCut())

	// On trial (GRUB adds these arguments to a trial entry) the same failure reboots, so the
	// boot loader counts the try: QEMU (-no-reboot) ends by itself.
	trialCfg := missing(biosCfg)
	trialCfg.Append += " rd.shell=0 rd.emergency=reboot"
	m.SetConfig(trialCfg)
	must(t, m.Start())
	checkReset(t, m, ctx, "with rd.shell=0 rd.emergency=reboot")

	// systemd-boot passes an entry's arguments unchanged; the initramfs's generator finds the
	// variable systemd-boot sets for an entry on trial (stored in boot 3) and adds them itself.
	m.SetConfig(missing(uefiCfg))
	must(t, m.Start())
	if log := checkReset(t, m, ctx, "with LoaderBootCountPath set"); !strings.Contains(log, "systemd-boot booted "+trialEntry+" on trial") {
		t.Errorf("the console does not show the generator finding the entry on trial (%s)", m.SerialLog())
	}
	t.Logf("TestBootPath took %s; serial logs in %s", time.Since(start).Round(time.Second), art)
}

// What the console shows when bootc-root-setup cannot set up the missing deployment.
const setupFailed = "bootc-root-setup: error: setting up the deployment root failed: deployment default/missing.0"

// checkReset waits for a boot of the missing deployment to end by itself and checks from its
// console that it failed in the initramfs and reset, rather than waiting in the emergency shell
// or panicking. It returns the console log.
func checkReset(t *testing.T, m *vm.VM, ctx context.Context, what string) string {
	t.Helper()
	err := m.WaitBoot(ctx, 0)
	if !errors.Is(err, vm.ErrExited) {
		t.Errorf("booting a missing deployment %s: got %v, want the guest to reset by itself", what, err)
		m.PowerCut()
	}
	data, _ := os.ReadFile(m.SerialLog())
	log := string(data)
	for _, want := range []string{setupFailed, "Boot has failed", "reboot: Restarting system"} {
		if !strings.Contains(log, want) {
			t.Errorf("%s: the console lacks %q (%s)", what, want, m.SerialLog())
		}
	}
	for _, bad := range []string{"Entering emergency mode", "Kernel panic"} {
		if strings.Contains(log, bad) {
			t.Errorf("%s: the console shows %q (%s)", what, bad, m.SerialLog())
		}
	}
	return log
}

// systemd's Boot Loader Interface: the variable systemd-boot sets when the entry it booted
// carries a boot counter, and an entry path as it stores it there.
const (
	efivarsDir       = "/sys/firmware/efi/efivars"
	bootCountPathVar = "LoaderBootCountPath-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
	trialEntry       = `\loader\entries\bootc-default-0123456789ab.0+1-1.conf`
)

// efiVarEscaped is the efivarfs content of a string variable (non-volatile, boot service and
// runtime attributes, then UTF-16LE with a NUL) as printf octal escapes.
func efiVarEscaped(s string) string {
	b := []byte{7, 0, 0, 0}
	for _, r := range s + "\x00" {
		b = append(b, byte(r), byte(r>>8))
	}
	var out strings.Builder
	for _, c := range b {
		fmt.Fprintf(&out, "\\%03o", c)
	}
	return out.String()
}

// uefiFirmware returns QEMU arguments that boot through OVMF with a private variable store in
// dir, which keeps the variables across the machine's boots.
func uefiFirmware(t *testing.T, dir string) []string {
	t.Helper()
	code, vars, err := vm.FindOVMF()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(vars)
	must(t, err)
	store := filepath.Join(dir, "OVMF_VARS.fd")
	must(t, os.WriteFile(store, data, 0o644))
	return []string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + code,
		"-drive", "if=pflash,format=raw,unit=1,file=" + store,
	}
}
