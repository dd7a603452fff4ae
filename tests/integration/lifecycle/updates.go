package lifecycle

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gobootc.dev/lib/host"
)

// applyTimeout bounds an update the guest applies by itself (fetch, stage, reboot) until QEMU
// ends: under TCG a few minutes.
const applyTimeout = 15 * time.Minute

// hookLog is where the test's status hook (a unit wanted by bootc-status-updated.target)
// counts the status changes it saw, one line each.
const hookLog = "/var/lib/bootc-hook/changes"

// RunUpdates installs v1 and updates it the ways a host updates without anyone at a prompt:
// a USB stick carrying v2 inserted while the machine has no network, then from the registry
// v3 (which binds two application images), v4 (which drops one) through the staging service,
// and v5 through the service that applies and reboots. Along the way it checks that the units
// start without errors, that the status hook fires, that bound images arrive before the reboot
// and run with podman, and that an image only a rollback deployment still binds is kept until
// that deployment goes.
func (e *Env) RunUpdates(ctx context.Context, o Options) (*Report, error) {
	return e.drive(ctx, o, func(r *run) {
		r.offline, r.usb = true, true
		r.install()
		r.offlineBoot()
		r.stickUpdate()
		r.boundSwitch()
		r.stagingService()
		r.applyingService()
		r.factoryReset()
	})
}

func (r *run) offlineBoot() {
	r.n.Step("Boot v1 with no network", "The machine's network reaches nothing: no registry, no "+
		"forwarding. The units bootc ships start without errors and the update timer waits.")
	g := r.boot("v1, no network")
	r.expectBooted(g, g.status("first boot"), "1")
	if _, _, code := g.sh("timeout 10 bash -c 'exec 3<>/dev/tcp/" + strings.Replace(GuestRegistry, ":", "/", 1) + "'"); code == 0 {
		r.errorf("the guest reaches %s although it should have no network", GuestRegistry)
	}
	r.expectUnits(g, "the first boot")
	r.n.Show("systemctl list-timers bootc-*", g.mustSh("systemctl list-timers --no-pager 'bootc-*'"))

	// A user's hook: a unit wanted by bootc-status-updated.target, run at each status change.
	g.mustSh("mkdir -p " + filepath.Dir(hookLog) + " && cat >/etc/systemd/system/bootc-test-hook.service <<'EOF'\n" +
		"[Unit]\nDescription=Count bootc status changes\n" +
		"[Service]\nType=oneshot\nExecStart=/bin/sh -c 'date +%%s >>" + hookLog + "'\n" +
		"[Install]\nWantedBy=bootc-status-updated.target\nEOF\n" +
		"systemctl enable bootc-test-hook.service")
}

func (r *run) stickUpdate() {
	r.n.Step("Insert a USB stick carrying v2", "The stick is an ext4 filesystem labelled BOOTC-UPDATE "+
		"holding v2 as an OCI image layout (skopeo copy … oci:). udev starts bootc-offline-update@.service, "+
		"which switches the host to the layout, stages v2 and, as /etc/default/bootc-offline-update asks, "+
		"reboots into it. Nobody touches the guest meanwhile.")
	stick := r.makeStick("v2")
	g := &guest{r: r}
	g.mustSh("echo BOOTC_OFFLINE_APPLY=1 >/etc/default/bootc-offline-update")
	r.timed("offline update from the stick, until the guest reboots", func() {
		r.check(r.m.AttachUSB(r.ctx, "stick", stick, true))
		r.waitSelfReboot("bootc-offline-update@*.service")
	})
	r.n.Logf("the guest rebooted by itself; console log %s", r.m.SerialLog())

	// The stick stays out of the next boot (pulled during the reboot), and from here on the
	// guest has its way to the registry.
	cfg := r.m.Config()
	cfg.GuestFwd = []string{GuestFwd}
	r.m.SetConfig(cfg)
	r.offline = false
	r.check(r.m.Start())
	r.tracked = ""
	g = r.boot("v2 from the USB stick")
	h := r.expectDeployments(g, "after the offline update", "2", "1")
	if img := h.Spec.Image; img == nil || img.Transport != "oci" {
		r.errorf("after the offline update: spec.image = %+v, want an oci layout", img)
	}
	r.n.Show("bootc status", g.mustSh("bootc status --format humanreadable"))
	if list := g.mustSh("bootc image list --type host"); !strings.Contains(list, "oci:/") {
		r.errorf("after the offline update: bootc image list shows no oci: image:\n%s", list)
	}
	r.expectUnits(g, "the boot after the offline update")
}

// makeStick writes a USB stick image: ext4 labelled BOOTC-UPDATE with the sample image tag as
// an OCI layout in os.oci, as skopeo copies it (compressed layers).
func (r *run) makeStick(tag string) string {
	dir := filepath.Join(r.o.Work, "stick")
	img := filepath.Join(r.o.Work, "stick.img")
	r.check(os.RemoveAll(dir))
	r.check(os.MkdirAll(dir, 0o755))
	defer os.RemoveAll(dir)
	r.check(skopeo(r.ctx, "containers-storage:"+SampleImage+":"+tag, "oci:"+filepath.Join(dir, "os.oci")+":"+tag))
	du, err := command(r.ctx, "du", "-sb", dir)
	r.check(err)
	used, err := strconv.ParseInt(strings.Fields(du)[0], 10, 64)
	r.check(err)
	os.Remove(img)
	r.check(os.WriteFile(img, nil, 0o644))
	r.check(os.Truncate(img, used+used/4+(64<<20)))
	_, err = command(r.ctx, "mkfs.ext4", "-q", "-L", "BOOTC-UPDATE", "-d", dir, img)
	r.check(err)
	r.n.Logf("USB stick %s: %d MiB of OCI layout", img, used>>20)
	return img
}

func (r *run) boundSwitch() {
	r.n.Step("Switch to the registry: v3 binds two application images", "v3 declares app-a (a "+
		".image file) and app-b (a .container file) in /usr/lib/bootc/bound-images.d. `bootc switch` "+
		"pulls both into bootc's own container storage while it stages, before any reboot.")
	g := r.publish("v3")
	before := r.hookCount(g)
	var out string
	r.timed("bootc switch to v3 (in the guest)", func() {
		out = g.mustShWithin(upgradeTimeout, "bootc switch "+TargetImage+" 2>&1")
	})
	r.n.Show("bootc switch "+TargetImage, out)
	r.tracked = TargetImage
	if h := g.status("after bootc switch"); version(h.Status.Staged) != "3" {
		r.errorf("after bootc switch: staged %q, want 3", version(h.Status.Staged))
	}
	r.expectStored(g, "staged v3, before the reboot", BoundApps, nil)
	r.expectHook(g, before)

	g = r.reboot("v3 with two bound images")
	r.expectDeployments(g, "after the reboot into v3", "3", "2")
	r.n.Show("bootc image list", g.mustSh("bootc image list"))
	for _, app := range BoundApps {
		r.expectRuns(g, app)
	}
	r.expectUnits(g, "the boot into v3")
}

func (r *run) stagingService() {
	r.n.Step("Stage v4 with bootc-fetch-stage-updates.service", "v4 binds app-a only. The "+
		"non-rebooting service stages it; the reboot is the operator's. After it, app-b stays "+
		"stored: the rollback deployment v3 still binds it.")
	g := r.publish("v4")
	r.timed("bootc-fetch-stage-updates.service (in the guest)", func() {
		g.mustStart("bootc-fetch-stage-updates.service")
	})
	if h := g.status("after the staging service"); version(h.Status.Staged) != "4" || version(h.Status.Booted) != "3" {
		r.errorf("after the staging service: staged %q, booted %q; want staged 4, booted 3", version(h.Status.Staged), version(h.Status.Booted))
	}
	g = r.reboot("v4, staged by the service")
	r.expectDeployments(g, "after the reboot into v4", "4", "3")
	r.waitCleanup(g)
	r.expectStored(g, "v4 booted, v3 the rollback", BoundApps, nil)
	r.expectRuns(g, "app-b")
	r.expectUnits(g, "the boot into v4")
}

func (r *run) applyingService() {
	r.n.Step("Apply v5 with bootc-fetch-apply-updates.service", "The service the update timer "+
		"starts fetches v5, stages it and reboots. After that boot v3 is no longer a rollback "+
		"target: bootc-cleanup.service removes its deployment and app-b, which only v3 bound.")
	g := r.publish("v5")
	r.timed("bootc-fetch-apply-updates.service, until the guest reboots", func() {
		g.mustSh("systemctl start --no-block bootc-fetch-apply-updates.service")
		r.waitSelfReboot("bootc-fetch-apply-updates.service")
	})
	r.check(r.m.Start())
	g = r.boot("v5, applied by the service")
	r.expectDeployments(g, "after the service applied v5", "5", "4")
	r.waitCleanup(g)
	journal := g.journal("bootc-cleanup.service")
	r.n.Show("journalctl -u bootc-cleanup.service", journal)
	// The summary reaches the journal once: as the structured entry, not also through stdout.
	if n := strings.Count(journal, "Bound images:"); n != 1 {
		r.errorf("bootc-cleanup.service's journal has the bound-image summary %d times, want once", n)
	}
	r.expectStored(g, "v5 booted, v4 the rollback", []string{"app-a"}, []string{"app-b"})
	if out := g.mustSh("cd /sysroot/bootc/deploy/default && ls -d */"); len(strings.Fields(out)) != 2 {
		r.errorf("after the cleanup: deployment trees %q, want two (v5 and v4)", strings.Fields(out))
	}
	r.expectRuns(g, "app-a")
	r.expectUnits(g, "the boot into v5")
}

func (r *run) factoryReset() {
	r.n.Step("Factory reset", "A local /etc file and a mark in /var first. `bootc install reset "+
		"--experimental` stages the booted image into a new stateroot; after the reboot the host runs "+
		"it with the image's /etc and an empty /var, while the old stateroot keeps both, and its "+
		"deployment stays in the boot entries until an update drops it.")
	g := &guest{r: r}
	old := g.booted()
	stateroot, id, _ := strings.Cut(old, "/")
	g.mustSh("echo mine >/etc/bootc-sample/reset-probe.conf && mkdir -p /var/lib/reset-probe && " +
		"echo mark >/var/lib/reset-probe/mark && sync")
	r.n.Show("bootc install reset --experimental", g.mustSh("bootc install reset --experimental 2>&1"))
	g = r.reboot("v5 in a new stateroot, after the factory reset")
	now := g.booted()
	if strings.HasPrefix(now, stateroot+"/") {
		r.errorf("after the reset the guest runs %s, want a deployment of a new stateroot", now)
	}
	for _, p := range []string{"/etc/bootc-sample/reset-probe.conf", "/var/lib/reset-probe/mark"} {
		if _, _, code := g.sh("test -e " + p); code == 0 {
			r.errorf("after the reset %s is still there", p)
		}
	}
	kept := "/sysroot/bootc/state/" + stateroot + "/" + id + "/etc/bootc-sample/reset-probe.conf /sysroot/bootc/state/" + stateroot + "/var/lib/reset-probe/mark"
	if _, errOut, code := g.sh("cat " + kept); code != 0 {
		r.errorf("the old stateroot lost its /etc or /var: %s", errOut)
	}
	r.n.Show("bootc status", g.mustSh("bootc status --format humanreadable"))
	r.expectUnits(g, "the boot after the factory reset")
}

// publish makes tag the registry's :latest and returns the guest once its network is up.
func (r *run) publish(tag string) *guest {
	r.check(r.env.Publish(r.ctx, tag))
	g := &guest{r: r}
	g.waitNetwork()
	return g
}

// expectDeployments checks the booted and rollback versions and returns the status.
func (r *run) expectDeployments(g *guest, when, booted, rollback string) *host.Host {
	h := g.status(when)
	r.expectBooted(g, h, booted)
	if got := version(h.Status.Rollback); got != rollback {
		r.errorf("%s: rollback %q, want %s", when, got, rollback)
	}
	return h
}

// waitSelfReboot waits for the guest to reboot by itself (QEMU ends), failing early when the
// unit that should do it failed.
func (r *run) waitSelfReboot(unit string) {
	deadline := time.Now().Add(applyTimeout)
	for {
		err := r.m.WaitExit(r.ctx, 10*time.Second)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.fatalf("%s did not reboot the guest within %s: %v", unit, applyTimeout, err)
		}
		// The agent stops answering once the shutdown begins: errors here mean nothing.
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		res, err := r.m.Shell(ctx, "systemctl --failed --no-legend --plain '"+unit+"'; "+
			"journalctl -b --no-pager -o cat -u '"+unit+"' | tail -n 20")
		cancel()
		if err == nil && strings.Contains(string(res.Stdout), " failed ") {
			r.fatalf("%s failed instead of rebooting the guest:\n%s", unit, res.Stdout)
		}
	}
}

// expectUnits checks that the update timer and the status path unit are waiting (boot has
// already checked that no unit failed).
func (r *run) expectUnits(g *guest, when string) {
	for _, u := range []string{"bootc-fetch-apply-updates.timer", "bootc-status-updated.path"} {
		if s := strings.TrimSpace(g.shOut("systemctl is-active " + u)); s != "active" {
			r.errorf("%s: %s is %q, want active", when, u, s)
		}
	}
}

// expectStored checks which application images bootc's storage holds, as podman sees them
// through the additional image store, and that podman's own storage holds none of them.
func (r *run) expectStored(g *guest, when string, present, absent []string) {
	list := g.mustSh("podman --storage-opt=additionalimagestore=/usr/lib/bootc/storage images --format '{{.Repository}}:{{.Tag}}'")
	r.n.Show("podman --storage-opt=additionalimagestore=/usr/lib/bootc/storage images", list)
	for _, app := range present {
		if !strings.Contains(list, BoundRef(app)+"\n") {
			r.errorf("%s: bootc's storage lacks %s", when, BoundRef(app))
		}
	}
	for _, app := range absent {
		if strings.Contains(list, BoundRef(app)+"\n") {
			r.errorf("%s: bootc's storage still holds %s", when, BoundRef(app))
		}
	}
	if own := g.mustSh("podman images --format '{{.Repository}}'"); strings.Contains(own, "bound/") {
		r.errorf("%s: podman's own storage holds bound images:\n%s", when, own)
	}
}

// expectRuns runs a bound application with podman from bootc's storage, never pulling.
func (r *run) expectRuns(g *guest, app string) {
	cmd := "podman --storage-opt=additionalimagestore=/usr/lib/bootc/storage run --rm --pull=never --network=none " + BoundRef(app)
	out, errOut, code := g.shWithin(5*time.Minute, cmd)
	if code != 0 || strings.TrimSpace(out) != "hello from "+app {
		r.errorf("%s: exit %d, %q %s; want \"hello from %s\"", cmd, code, strings.TrimSpace(out), strings.TrimSpace(errOut), app)
		return
	}
	r.n.Show(cmd, out)
}

// mustStart starts a unit and waits for it to finish; its journal is shown either way.
func (g *guest) mustStart(unit string) {
	_, errOut, code := g.shWithin(upgradeTimeout, "systemctl start "+unit)
	g.r.n.Show("journalctl -u "+unit, g.journal(unit))
	if code != 0 {
		g.r.fatalf("systemctl start %s: exit %d: %s", unit, code, strings.TrimSpace(errOut))
	}
}

// journal is what a unit logged in this boot.
func (g *guest) journal(unit string) string {
	return g.shOut("journalctl -b --no-pager -o cat -u " + unit)
}

// hookCount is how many status changes the test's hook has counted.
func (r *run) hookCount(g *guest) int {
	return len(strings.Fields(g.shOut("cat " + hookLog + " 2>/dev/null")))
}

// expectHook waits for the status hook to count a change beyond before.
func (r *run) expectHook(g *guest, before int) {
	deadline := time.Now().Add(time.Minute)
	for r.hookCount(g) <= before {
		if time.Now().After(deadline) {
			r.errorf("the status hook did not run after the status changed (%d changes counted); %s", before,
				g.shOut("systemctl status --no-pager bootc-status-updated.path bootc-status-updated.target bootc-test-hook.service 2>&1 | tail -n 30"))
			return
		}
		time.Sleep(time.Second)
	}
}

// waitCleanup waits for bootc-cleanup.service, which a boot after a finalize runs, to finish.
func (r *run) waitCleanup(g *guest) {
	deadline := time.Now().Add(5 * time.Minute)
	for g.shOut("test -e /sysroot/bootc/cleanup-pending && echo pending") != "" {
		if time.Now().After(deadline) {
			r.errorf("bootc-cleanup.service did not finish within 5 minutes: %s", g.shOut("systemctl status --no-pager bootc-cleanup.service 2>&1 | tail -n 20"))
			return
		}
		time.Sleep(2 * time.Second)
	}
	if res := strings.TrimSpace(g.shOut("systemctl show -P Result bootc-cleanup.service")); res != "success" {
		r.errorf("bootc-cleanup.service: result %q, want success", res)
	}
}
