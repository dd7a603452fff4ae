package lifecycle

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gobootc.dev/lib/failpoint"
	"gobootc.dev/lib/record"
)

// FailpointPort is the virtio-serial port through which bootc-finalize, stopped at a
// failpoint, tells the host the step it stopped at; the guest sees it as
// /dev/virtio-ports/<name>.
const FailpointPort = "dev.gobootc.failpoint"

// stopTimeout bounds the wait from the reboot request until finalize stops at its failpoint.
const stopTimeout = 5 * time.Minute

// Cut is one power cut during finalize.
type Cut struct {
	// Step is where finalize stops and the power goes, as lib/failpoint names it; finalize
	// stops before doing the step.
	Step string
	// NewBoots says the boot entries had switched to the staged deployment before Step, so it
	// must boot after the cut; otherwise the deployment booted before must.
	NewBoots bool
}

// DefaultCuts are, for each boot loader, two places in finalize where what the boot loader reads
// is at stake: the new entries as good as written but not in effect, and just after the switch.
// Every step is crash-tested on the host (TestCrashAtEveryStep in bootc-finalize and in
// lib/bootloader), where a cut costs milliseconds instead of a boot.
var DefaultCuts = map[string][]Cut{
	// /boot on the root file system: a new generation of entries, then one rename of the
	// loader symlink.
	"grub": {
		{Step: "bootloader:switch"},                          // the new generation written and synced
		{Step: "bootloader:remove-previous", NewBoots: true}, // renamed and checkpointed; the old generation still there
	},
	// The ESP (FAT): the entries are written one by one, the new default first, which from then
	// on sorts above every old entry.
	"systemd": {
		{Step: "bootloader:clean"},                          // kernels and initramfs copied to the ESP and synced
		{Step: "bootloader:write grub.cfg", NewBoots: true}, // every new entry written; the old ones not yet removed
	},
}

// otherVersion is the sample version an upgrade from v1 or v2 goes to.
var otherVersion = map[string]string{"1": "2", "2": "1"}

// failpointEnv is the environment that makes finalize trace its steps on the console and, for
// a cut, stop at its step and tell the host through FailpointPort.
func failpointEnv(c *Cut) []string {
	env := []string{failpoint.EnvTrace + "=/dev/ttyS0"}
	if c != nil {
		env = append(env, failpoint.Env+"="+c.Step, failpoint.EnvAction+"="+failpoint.ActionBlock,
			failpoint.EnvNotify+"=/dev/virtio-ports/"+FailpointPort)
	}
	return env
}

// armFinalize gives bootc-finalize.service env until the next boot, through a drop-in in /run.
// Staging starts the unit; the drop-in goes in before it, so its stop surely sees the
// environment.
func (g *guest) armFinalize(env []string) {
	var conf strings.Builder
	conf.WriteString("[Service]\n")
	for _, kv := range env {
		fmt.Fprintf(&conf, "Environment=%q\n", kv)
	}
	g.mustSh("mkdir -p /run/systemd/system/bootc-finalize.service.d && " +
		"cat >/run/systemd/system/bootc-finalize.service.d/50-failpoint.conf <<'EOF'\n" + conf.String() + "EOF\n" +
		"systemctl daemon-reload")
}

// checkCleanTrace reads the steps a complete finalize traced on the console of the boot it
// ended (shutdownLog) and checks that every cut's step is among them, so a misnamed step fails
// here rather than as a finalize that never stops.
func (r *run) checkCleanTrace(shutdownLog string) {
	data, err := os.ReadFile(shutdownLog)
	r.check(err)
	steps := tracedSteps(data)
	r.n.Logf("finalize traced: %s", strings.Join(steps, ", "))
	if len(steps) == 0 || steps[len(steps)-1] != "finalize:done" {
		r.errorf("a clean finalize traced %q on the console (%s), want steps ending with finalize:done", steps, shutdownLog)
		return
	}
	if !r.o.PowerCut {
		return
	}
	for _, c := range r.o.Cuts {
		if !slices.Contains(steps, c.Step) {
			r.errorf("the power cut's step %q is not among the steps a clean finalize goes through: %q", c.Step, steps)
		}
	}
}

// powerCuts cuts the power during finalize at each of the run's cuts in turn, on the same
// machine and disk, then updates once more. The cuts come in the order finalize reaches them,
// so each finalize after a cut gets past the step the previous one stopped at.
func (r *run) powerCuts() {
	var steps []string
	for _, c := range r.o.Cuts {
		steps = append(steps, c.Step)
	}
	r.n.Step("Cut the power during finalize",
		"Stage an update, reboot, and cut the power when bootc-finalize stops at a chosen step ("+
			strings.Join(steps, ", ")+"): a drop-in arms a failpoint there, and finalize, stopped for "+
			"good, tells the host through a virtio-serial port, which then kills QEMU. The next boot "+
			"must run one complete deployment: the old one before the entries switched, the new one after.")
	var results []string
	for i, c := range r.o.Cuts {
		results = append(results, r.powerCut(c, steps[:i]))
	}
	r.rep.PowerCut = strings.Join(results, "; ")
	r.updateAfterCuts()
}

// powerCut stages the other version, cuts the power where c says and checks what boots;
// finalize must have got past the steps where the earlier cuts stopped it.
func (r *run) powerCut(c Cut, earlier []string) string {
	g := &guest{r: r}
	old := version(g.status("before the power cut at " + c.Step).Status.Booted)
	target, ok := otherVersion[old]
	if !ok {
		r.fatalf("before the power cut at %s: booted version %q, want 1 or 2", c.Step, old)
	}
	r.check(r.env.Publish(r.ctx, "v"+target))
	g.armFinalize(failpointEnv(&c))
	g.waitNetwork()
	r.n.Show("bootc upgrade", g.mustShWithin(upgradeTimeout, "bootc upgrade 2>&1"))
	if got := version(g.status("staging for the power cut at " + c.Step).Status.Staged); got != target {
		r.fatalf("staging for the power cut at %s: staged is %q, want %s", c.Step, got, target)
	}
	// Versions alone cannot tell the staged deployment from an older one of the same image
	// that an entry left by the cut might boot instead.
	oldID, stagedID := g.booted(), g.staged()

	r.check(r.m.RequestShutdown(r.ctx, "reboot"))
	stopped, err := r.m.ReadLine(r.ctx, FailpointPort, stopTimeout)
	if err != nil {
		r.fatalf("finalize did not stop at %s: %v", c.Step, err)
	}
	if stopped != c.Step {
		r.errorf("finalize says it stopped at %q, want %q", stopped, c.Step)
	}
	// Finalize stays where it stopped, so the console can catch up before the power goes.
	steps := r.waitTraced(c.Step, 10*time.Second)
	r.check(r.m.PowerCut())
	r.n.Logf("power cut at finalize step %s; steps traced on the console: %s", c.Step, strings.Join(steps, ", "))
	if len(steps) == 0 || steps[len(steps)-1] != c.Step {
		r.errorf("the console shows finalize reaching %q, want it to end at %s (%s)", steps, c.Step, r.m.SerialLog())
	}
	for _, e := range earlier {
		if !slices.Contains(steps, e) {
			r.errorf("finalize stopped at %s without passing %s, where an earlier cut stopped it: %q", c.Step, e, steps)
		}
	}

	want, wantID := old, oldID
	if c.NewBoots {
		want, wantID = target, stagedID
	}
	r.check(r.m.Start())
	g = r.boot(fmt.Sprintf("v%s after a power cut at %s", want, c.Step))
	if got := g.booted(); got != wantID {
		r.errorf("after the power cut at %s: deployment %s booted, want %s", c.Step, got, wantID)
	}
	h := r.expectDeployments(g, "after the power cut at "+c.Step, want, otherVersion[want])
	if h.Status.Staged != nil {
		r.errorf("after the power cut at %s: a staged deployment survived the reboot: %q", c.Step, version(h.Status.Staged))
	}
	r.expectEtc(g, "v"+want, "hello from v"+want)
	r.expectVar(g)
	r.n.Show("bootc status", g.mustSh("bootc status --format humanreadable"))
	return fmt.Sprintf("at %s: v%s booted", c.Step, want)
}

// updateAfterCuts upgrades once more and reboots cleanly: the host the cuts left updates
// normally, and what the cut finalizes left behind is collected.
func (r *run) updateAfterCuts() {
	g := &guest{r: r}
	booted := version(g.status("after the power cuts").Status.Booted)
	target := otherVersion[booted]
	r.n.Step("Update after the power cuts", "Publish v"+target+" as "+TargetImage+", upgrade and reboot: "+
		"the host the cuts left updates normally, and the deployments they left half-done are collected.")
	g = r.publish("v" + target)
	r.n.Show("bootc upgrade", g.mustShWithin(upgradeTimeout, "bootc upgrade 2>&1"))
	if got := version(g.status("after the upgrade following the power cuts").Status.Staged); got != target {
		r.errorf("after the power cuts: bootc upgrade staged %q, want %s", got, target)
	}
	stagedID := g.staged()
	g = r.reboot("v" + target + " after the power cuts and an upgrade")
	if got := g.booted(); got != stagedID {
		r.errorf("after the update following the power cuts: deployment %s booted, want the staged %s", got, stagedID)
	}
	r.expectDeployments(g, "after the update following the power cuts", target, booted)
	r.expectEtc(g, "v"+target, "hello from v"+target)
	r.expectVar(g)
	r.waitCleanup(g)
	if out := g.mustSh("cd /sysroot/bootc/deploy/default && ls -d */"); len(strings.Fields(out)) != 2 {
		r.errorf("after the update following the power cuts: deployment trees %q, want two (booted and rollback)", strings.Fields(out))
	}
	r.n.Show("bootc status", g.mustSh("bootc status --format humanreadable"))
}

// traced lists the finalize steps the current boot's console shows.
func (r *run) traced() []string {
	data, _ := os.ReadFile(r.m.SerialLog())
	return tracedSteps(data)
}

// waitTraced waits up to timeout for the console to show step, which the guest's serial port
// may still be sending when finalize has already stopped there, and returns the steps traced.
func (r *run) waitTraced(step string, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		steps := r.traced()
		if slices.Contains(steps, step) || time.Now().After(deadline) {
			return steps
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tracedSteps picks the steps finalize traced (lib/failpoint names) out of a console log, in
// order. Kernel and systemd messages share the console, but each trace is a line of its own.
func tracedSteps(console []byte) []string {
	var steps []string
	for _, line := range strings.Split(string(console), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "finalize:") || strings.HasPrefix(line, "bootloader:") {
			steps = append(steps, line)
		}
	}
	return steps
}

// booted names the deployment the guest runs ("<stateroot>/<id>"), as its initramfs recorded it.
func (g *guest) booted() string {
	var b record.Booted
	g.r.check(json.Unmarshal([]byte(g.mustSh("cat /run/bootc/booted.json")), &b))
	return b.Stateroot + "/" + b.ID
}

// staged names the deployment staged for the next boot.
func (g *guest) staged() string {
	var s record.Staged
	g.r.check(json.Unmarshal([]byte(g.mustSh("cat /run/bootc/staged.json")), &s))
	return s.Stateroot + "/" + s.ID
}
