package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/host"
	"gobootc.dev/tests/integration/vm"
)

// Bootloaders a run can install, with the firmware that boots each.
var Bootloaders = map[string]vm.Boot{"grub": vm.BootBIOS, "systemd": vm.BootUEFI}

// upgradeTimeout bounds `bootc upgrade` in the guest: under TCG fetching and unpacking a few
// tens of MiB takes about half a minute, on a busy host several times that.
const upgradeTimeout = 10 * time.Minute

// Options choose one run.
type Options struct {
	Bootloader string // grub (BIOS) or systemd (UEFI)
	Artifacts  string // serial logs, QEMU command lines, the install log; must exist
	Work       string // scratch: the disk image
	DiskSize   int64  // bytes; default 6 GiB (sparse)
	// PowerCut adds the power cuts during finalize and the update after them.
	PowerCut bool
	// Cuts are where the power is cut, in the order finalize reaches them; default
	// DefaultCuts[Bootloader].
	Cuts []Cut
	// Narrator is told about this run; nil means the one given to Prepare.
	Narrator Narrator
	// ValidateStatus checks a `bootc status --json` document against the published schema; nil
	// skips the check.
	ValidateStatus func([]byte) error
	// BadUpdates adds, at the end, the updates that must heal by themselves (BadImages); the
	// images must have been prepared with AllImages.
	BadUpdates bool
}

// Boot is one boot of the machine.
type Boot struct {
	What      string
	Took      time.Duration // from QEMU start to the guest agent's answer
	SerialLog string
}

// Timing is how long one step took.
type Timing struct {
	Step string
	Took time.Duration
}

// Report is what a run measured.
type Report struct {
	Boots   []Boot
	Timings []Timing
	// PowerCut says where each cut landed and what booted after it.
	PowerCut string
	// Recoveries are the bad updates' boots and times until the host was back (BadUpdates).
	Recoveries []Recovery
}

// abort carries a fatal error out of the steps: each step then reads as a list of checks
// instead of a ladder of error returns. Run turns it back into an error.
type abort struct{ err error }

// run is one lifecycle in progress.
type run struct {
	ctx    context.Context
	env    *Env
	o      Options
	n      Narrator
	m      *vm.VM
	rep    *Report
	disk   string
	token  string
	failed bool
	// tracked is the image status must show the host following ("" while it follows a USB
	// stick's layout, whose path the checks do not pin).
	tracked string
	// offline leaves the guest's network without any way out (no guestfwd); usb gives the
	// machine a USB controller for sticks.
	offline, usb bool
}

func (r *run) fatalf(format string, args ...any) {
	panic(abort{fmt.Errorf(format, args...)})
}

func (r *run) errorf(format string, args ...any) {
	r.failed = true
	r.n.Errorf(format, args...)
}

func (r *run) check(err error) {
	if err != nil {
		panic(abort{err})
	}
}

// timed runs f and records how long it took under name.
func (r *run) timed(name string, f func()) {
	start := time.Now()
	f()
	took := time.Since(start)
	r.rep.Timings = append(r.rep.Timings, Timing{name, took})
	r.n.Logf("%s took %s", name, took.Round(time.Second))
}

// Run installs v1 from inside its container to a disk image, boots it, upgrades to v2 (which
// must be blessed after its trial boot), reboots, rolls back, (with PowerCut) cuts the power
// during finalize at each of Options.Cuts and updates again, and (with BadUpdates) applies
// each of BadImages, which must fall back by themselves.
// Checks that fail are reported to the narrator as they happen; the returned error is the
// first one that stopped the run, or ErrChecksFailed.
func (e *Env) Run(ctx context.Context, o Options) (rep *Report, err error) {
	if o.BadUpdates && e.images != AllImages {
		return nil, fmt.Errorf("lifecycle: Options.BadUpdates needs the images of %q, not %q", AllImages, e.images)
	}
	return e.drive(ctx, o, func(r *run) {
		r.install()
		r.firstBoot()
		r.upgrade()
		r.blessed()
		r.rollback()
		if r.o.PowerCut {
			r.powerCuts()
		}
		if r.o.BadUpdates {
			r.badUpdates()
		}
	})
}

// drive checks the options, runs the steps on a new machine, and powers it down at the end.
func (e *Env) drive(ctx context.Context, o Options, steps func(*run)) (rep *Report, err error) {
	if _, ok := Bootloaders[o.Bootloader]; !ok {
		return nil, fmt.Errorf("bootloader %q: want grub or systemd", o.Bootloader)
	}
	if o.Artifacts == "" || o.Work == "" {
		return nil, errors.New("lifecycle: Options.Artifacts and Options.Work are required")
	}
	if o.DiskSize == 0 {
		o.DiskSize = 6 << 30
	}
	if o.Cuts == nil {
		o.Cuts = DefaultCuts[o.Bootloader]
	}
	r := &run{ctx: ctx, env: e, o: o, n: o.Narrator, rep: &Report{}, tracked: TargetImage}
	if r.n == nil {
		r.n = e.n
	}
	defer func() {
		if r.m != nil {
			r.m.Close()
		}
		if x := recover(); x != nil {
			a, ok := x.(abort)
			if !ok {
				panic(x)
			}
			err = a.err
		}
		if err == nil && r.failed {
			err = ErrChecksFailed
		}
		rep = r.rep
	}()
	steps(r)
	if err := r.m.Shutdown(ctx, "powerdown"); err != nil {
		r.n.Logf("powering the guest down: %v", err)
	}
	return r.rep, nil
}

// ErrChecksFailed means the run completed but some checks failed (each was reported).
var ErrChecksFailed = errors.New("some lifecycle checks failed")

func (r *run) install() {
	r.n.Step("Install v1 to a disk image from inside its container",
		"bootc install to-disk runs in the image's own container, finds the image in the host's container "+
			"storage (/run/.containerenv names it), partitions a loop device (BIOS boot, ESP, root), "+
			"deploys the image and installs the "+r.o.Bootloader+" boot loader. The installed system "+
			"follows "+TargetImage+" for updates; --karg adds an argument of the installer's own.")
	r.disk = filepath.Join(r.o.Work, "disk.img")
	os.Remove(r.disk)
	r.check(os.WriteFile(r.disk, nil, 0o644))
	r.check(os.Truncate(r.disk, r.o.DiskSize))
	args := []string{"run", "--rm", "--privileged", "--pid=host", "--runtime", "runc", "--network", "none",
		"-v", "/dev:/dev", "-v", "/var/lib/containers:/var/lib/containers", "-v", r.o.Work + ":/output",
		SampleImage + ":v1",
		"bootc", "install", "to-disk", "--via-loopback", "/output/disk.img",
		"--target-imgref", TargetImage,
		// The target lives on the guest's side of the network; this container has none.
		"--skip-fetch-check",
		"--karg", "install.karg=1", "--bootloader", r.o.Bootloader}
	var out string
	var err error
	r.timed("install", func() { out, err = command(r.ctx, "podman", args...) })
	os.WriteFile(filepath.Join(r.o.Artifacts, "install.log"), []byte("podman "+strings.Join(args, " ")+"\n\n"+out+"\n"), 0o644)
	r.check(err)
	r.n.Show("podman "+strings.Join(args, " "), out)
}

// boot starts the machine (created on the first boot) and waits for the guest agent.
func (r *run) boot(what string) *guest {
	if r.m == nil {
		fwd := []string{GuestFwd}
		if r.offline {
			fwd = nil
		}
		m, err := vm.New(vm.Config{
			Dir:      r.o.Artifacts,
			Boot:     Bootloaders[r.o.Bootloader],
			Disks:    []vm.Disk{{Path: r.disk}},
			GuestFwd: fwd,
			USB:      r.usb,
			Ports:    []string{FailpointPort},
			Log:      r.n.Logf,
		})
		r.check(err)
		r.m = m
	}
	if !r.m.Running() {
		r.check(r.m.Start())
	}
	if w, ok := r.n.(ConsoleWatcher); ok {
		w.Console(r.m.SerialLog())
	}
	start := time.Now()
	r.check(r.m.WaitBoot(r.ctx, 0))
	took := time.Since(start)
	r.rep.Boots = append(r.rep.Boots, Boot{What: what, Took: took, SerialLog: r.m.SerialLog()})
	r.n.Logf("boot %d (%s): the guest agent answered after %s; console log %s", r.m.Boots(), what, took.Round(time.Second), r.m.SerialLog())
	if err := CheckUnits(r.ctx, r.m); err != nil {
		r.errorf("boot %d (%s): %v", r.m.Boots(), what, err)
	}
	return &guest{r: r}
}

// reboot reboots the guest cleanly, so that finalize runs at shutdown, and waits for it.
func (r *run) reboot(what string) *guest {
	start := time.Now()
	r.check(r.m.Shutdown(r.ctx, "reboot"))
	r.n.Logf("shutdown took %s", time.Since(start).Round(time.Second))
	r.check(r.m.Start())
	return r.boot(what)
}

func (r *run) firstBoot() {
	r.n.Step("Boot the installed disk", r.firmware()+" The initramfs sets up the deployment as / (read-only), "+
		"its own writable /etc and the shared /var. The rw on the kernel command line is for the physical "+
		"root's file system, which holds /etc and /var and must stay writable; / is a read-only bind mount "+
		"of the deployment on it (a flag of that mount only), which bootc-remount.service sets again after "+
		"systemd-remount-fs.")
	g := r.boot("v1, first boot")
	h := g.status("after the first boot")
	r.expectBooted(g, h, "1")
	if h.Status.Staged != nil || h.Status.Rollback != nil {
		r.errorf("first boot: status shows staged %v and rollback %v, want neither", version(h.Status.Staged), version(h.Status.Rollback))
	}
	if h.Spec.Image == nil || h.Spec.Image.Image != TargetImage {
		r.errorf("first boot: spec.image = %+v, want %s", h.Spec.Image, TargetImage)
	}
	r.n.Show("bootc status", g.mustSh("bootc status --format humanreadable"))
	c := g.cmdline()
	r.n.Show("cat /proc/cmdline", c.String())
	r.wantArgs(c, "first boot", []string{"install.karg=1", "console=ttyS0,115200n8"}, []string{"bootc.sample=v2"})
	// /usr is part of / (no mount of its own), so the probe below shows it read-only.
	mounts := "for m in / /etc /var /sysroot; do findmnt -n -o TARGET,OPTIONS -M $m; done"
	r.n.Show(mounts, g.shOut(mounts))

	for _, p := range []string{"/usr", "/usr/bin"} {
		if _, errOut, code := g.sh("touch " + p + "/.bootc-probe"); code == 0 || !strings.Contains(errOut, "Read-only file system") {
			r.errorf("writing in %s: exit %d, %q; want a read-only file system", p, code, strings.TrimSpace(errOut))
		}
	}
	r.n.Show("touch /usr/.bootc-probe", strings.TrimSpace(g.shOut("touch /usr/.bootc-probe 2>&1 || true")))

	r.n.Step("Change /etc locally and leave a mark in /var",
		"A new file /etc/bootc-sample/local.conf and an edited /etc/hostname are local changes that "+
			"updates must keep. The mark, a random token in /var/lib/bootc-lifecycle/token, must read the "+
			"same after every boot: /var is shared by all deployments and kept as it is.")
	r.token = fmt.Sprintf("%x", time.Now().UnixNano())
	g.mustSh("echo 'colour=blue' >/etc/bootc-sample/local.conf && echo bootc-lifecycle >/etc/hostname && " +
		"mkdir -p /var/lib/bootc-lifecycle && echo " + r.token + " >/var/lib/bootc-lifecycle/token && sync")
	shown := "head /etc/bootc-sample/*.conf /etc/hostname /var/lib/bootc-lifecycle/token"
	r.n.Show(shown, g.mustSh(shown))
}

func (r *run) upgrade() {
	r.n.Step("Publish v2 and upgrade", "v2 becomes "+TargetImage+". `bootc upgrade` fetches the "+
		"layers that changed and stages a v2 deployment; it becomes the default only at shutdown, when "+
		"bootc-finalize merges /etc and writes the boot entries.")
	r.check(r.env.Publish(r.ctx, "v2"))
	g := &guest{r: r}
	g.armFinalize(failpointEnv(nil))
	g.waitNetwork()
	var out string
	r.timed("bootc upgrade (in the guest)", func() { out = g.mustShWithin(upgradeTimeout, "bootc upgrade 2>&1") })
	r.n.Show("bootc upgrade", out)
	h := g.status("after bootc upgrade")
	if version(h.Status.Staged) != "2" || version(h.Status.Booted) != "1" {
		r.errorf("after bootc upgrade: staged %q, booted %q; want staged 2, booted 1", version(h.Status.Staged), version(h.Status.Booted))
	}
	r.n.Show("bootc status", g.mustSh("bootc status --format humanreadable"))

	r.n.Step("Reboot into v2", "The clean reboot runs bootc-finalize: /etc is merged three ways (the "+
		"local changes stay, v2's new defaults arrive) and v2 becomes the first boot entry. A drop-in "+
		"makes finalize trace its steps on the console.")
	shutdownLog := r.m.SerialLog()
	g = r.reboot("v2 after the upgrade")
	r.checkCleanTrace(shutdownLog)
	h = g.status("after the reboot into v2")
	r.expectBooted(g, h, "2")
	if version(h.Status.Rollback) != "1" || h.Status.Staged != nil {
		r.errorf("after the reboot into v2: rollback %q, staged %q; want rollback 1 and nothing staged", version(h.Status.Rollback), version(h.Status.Staged))
	}
	r.n.Show("bootc status", g.mustSh("bootc status --format humanreadable"))
	r.expectEtc(g, "v2", "hello from v2")
	r.expectVar(g)
	c := g.cmdline()
	r.n.Show("cat /proc/cmdline", c.String())
	r.wantArgs(c, "v2", []string{"install.karg=1", "bootc.sample=v2", "console=ttyS0,115200n8"}, nil)
}

func (r *run) rollback() {
	r.n.Step("Roll back to v1", "`bootc rollback` puts the previous deployment first in the boot "+
		"order; after a reboot v1 runs again, with its own /etc.")
	g := &guest{r: r}
	r.n.Show("bootc rollback", g.mustSh("bootc rollback 2>&1"))
	h := g.status("after bootc rollback")
	if !h.Status.RollbackQueued {
		r.errorf("after bootc rollback: rollbackQueued is false")
	}
	g = r.reboot("v1 after the rollback")
	h = g.status("after the rollback")
	r.expectBooted(g, h, "1")
	if version(h.Status.Rollback) != "2" {
		r.errorf("after the rollback: rollback is %q, want 2", version(h.Status.Rollback))
	}
	r.n.Show("bootc status", g.mustSh("bootc status --format humanreadable"))
	r.expectEtc(g, "v1", "hello from v1")
	r.expectVar(g)
	c := g.cmdline()
	r.n.Show("cat /proc/cmdline", c.String())
	r.wantArgs(c, "v1 after the rollback", []string{"install.karg=1"}, []string{"bootc.sample=v2"})
}

func (r *run) firmware() string {
	if r.o.Bootloader == "systemd" {
		return "OVMF (UEFI) starts systemd-boot from the ESP, which boots the first BLS entry."
	}
	return "SeaBIOS starts GRUB from the BIOS boot partition, which reads the menu bootc generated."
}

// expectBooted checks that status and the running /usr agree on the booted version.
func (r *run) expectBooted(g *guest, h *host.Host, want string) {
	if got := version(h.Status.Booted); got != want {
		r.errorf("booted version is %q, want %s", got, want)
	}
	if b := h.Status.Booted; r.tracked != "" && b != nil && b.Image != nil && b.Image.Image.Image != r.tracked {
		r.errorf("booted image is %s, want %s", b.Image.Image.Image, r.tracked)
	}
	if got := strings.TrimSpace(g.mustSh("cat /usr/share/bootc-sample/version")); got != "v"+want {
		r.errorf("/usr/share/bootc-sample/version is %q, want v%s", got, want)
	}
	if h.Status.Type == nil || *h.Status.Type != host.HostTypeBootc {
		r.errorf("status.type is %v, want %s", h.Status.Type, host.HostTypeBootc)
	}
}

// expectEtc checks the merged /etc: the local changes and the running image's default.
func (r *run) expectEtc(g *guest, image, greeting string) {
	script := "cat /etc/bootc-sample/defaults.conf /etc/bootc-sample/local.conf /etc/hostname; hostname"
	out := g.mustSh(script)
	r.n.Show(script, out)
	if !strings.Contains(out, "greeting="+greeting+"\n") {
		r.errorf("%s: /etc/bootc-sample/defaults.conf lacks greeting=%s", image, greeting)
	}
	if !strings.Contains(out, "colour=blue\n") {
		r.errorf("%s: the local /etc/bootc-sample/local.conf was lost", image)
	}
	if strings.Count(out, "bootc-lifecycle\n") != 2 {
		r.errorf("%s: the local /etc/hostname change was lost or not applied", image)
	}
}

func (r *run) expectVar(g *guest) {
	got := strings.TrimSpace(g.mustSh("cat /var/lib/bootc-lifecycle/token"))
	r.n.Show("cat /var/lib/bootc-lifecycle/token", got)
	if got != r.token {
		r.errorf("/var/lib/bootc-lifecycle/token is %q, want %q: /var did not persist", got, r.token)
	}
}

func (r *run) wantArgs(c *cmdline.Cmdline, when string, present, absent []string) {
	have := map[string]bool{}
	for _, a := range c.Args() {
		have[a.String()] = true
	}
	for _, a := range present {
		if !have[a] {
			r.errorf("%s: /proc/cmdline lacks %s: %s", when, a, c)
		}
	}
	for _, a := range absent {
		if have[a] {
			r.errorf("%s: /proc/cmdline has %s: %s", when, a, c)
		}
	}
}

func version(e *host.BootEntry) string {
	if e == nil || e.Image == nil || e.Image.Version == nil {
		return ""
	}
	return *e.Image.Version
}

// guest runs commands in the booted machine.
type guest struct{ r *run }

func (g *guest) sh(script string) (stdout, stderr string, code int) {
	return g.shWithin(0, script)
}

// shWithin runs a script that may take up to timeout (0: the harness default).
func (g *guest) shWithin(timeout time.Duration, script string) (stdout, stderr string, code int) {
	ctx := g.r.ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	res, err := g.r.m.Shell(ctx, script)
	if err != nil {
		g.r.fatalf("guest: %s: %v", script, err)
	}
	return string(res.Stdout), string(res.Stderr), res.ExitCode
}

// shOut runs a script and returns its output, whatever its exit status.
func (g *guest) shOut(script string) string {
	out, _, _ := g.sh(script)
	return out
}

func (g *guest) mustSh(script string) string { return g.mustShWithin(0, script) }

func (g *guest) mustShWithin(timeout time.Duration, script string) string {
	out, errOut, code := g.shWithin(timeout, script)
	if code != 0 {
		g.r.fatalf("guest: %s: exit %d\n%s%s", script, code, out, errOut)
	}
	return out
}

// status reads `bootc status --json`, checks it against the schema and parses it.
func (g *guest) status(when string) *host.Host {
	out := g.mustSh("bootc status --json")
	if v := g.r.o.ValidateStatus; v != nil {
		if err := v([]byte(out)); err != nil {
			g.r.errorf("%s: bootc status --json does not match the schema: %v\n%s", when, err, out)
		}
	}
	h, err := host.Parse([]byte(out))
	if err != nil {
		g.r.fatalf("%s: parsing bootc status --json: %v\n%s", when, err, out)
	}
	return h
}

func (g *guest) cmdline() *cmdline.Cmdline {
	c, err := cmdline.Parse(strings.TrimSpace(g.mustSh("cat /proc/cmdline")))
	g.r.check(err)
	return c
}

// waitNetwork waits until the guest has an address from QEMU's DHCP server.
func (g *guest) waitNetwork() {
	out, errOut, code := g.sh("/usr/lib/systemd/systemd-networkd-wait-online --any --ipv4 --timeout=120")
	if code != 0 {
		g.r.fatalf("the guest's network did not come up: %s%s\n%s", out, errOut, g.shOut("networkctl status --no-pager 2>&1 | head -n 30"))
	}
}
