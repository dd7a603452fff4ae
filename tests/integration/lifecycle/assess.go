package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/layout"
	"gobootc.dev/tests/integration/vm"
)

// SampleTries is how many boots a new default entry of the sample images gets
// (/usr/lib/bootc/bootcount.d in every sample image): a bad update costs SampleTries failed
// boots and one more that falls back.
const SampleTries = 2

// blessTimeout bounds the wait for bootc-health-bless.service once the guest has started.
const blessTimeout = 3 * time.Minute

// guestBoot is the guest's /boot: the physical root's, or the ESP mounted there.
const guestBoot = "/sysroot/boot"

// BadImage is a sample image that must not stay: its update heals by itself.
type BadImage struct {
	Tag string // v6, v7
	// Failure says what is wrong with it, for people.
	Failure string
	// Check is the required health check that fails, "" when the boot never gets that far;
	// LastLine is a line of its output that status must quote.
	Check, LastLine string
	// Restage also checks that the staging service does not stage it again.
	Restage bool
}

// BadImages are the bad updates Run applies, with BadUpdates, in order.
var BadImages = []BadImage{
	{Tag: "v6", Failure: "a required health check fails", Check: "50-sample-fails.sh",
		LastLine: "sample required check: this image is broken on purpose (v6)", Restage: true},
	{Tag: "v7", Failure: "the kernel panics (no init)"},
}

// Recovery is how one bad update healed: the boots from the reboot `bootc upgrade --apply`
// started until the boot that stayed on the previous deployment (that one included), and the
// time from the command until status said why.
type Recovery struct {
	Image   string        `json:"image"`
	Failure string        `json:"failure"`
	Tries   int           `json:"tries"`
	Boots   int           `json:"boots"`
	Target  int           `json:"targetBoots"` // Tries + 1
	Took    time.Duration `json:"-"`
	Seconds float64       `json:"seconds"`
}

// RecoveryFile is the artifact that records a run's recoveries, for `make bench` and people.
const RecoveryFile = "recovery.json"

// RecoveryReport is RecoveryFile's content.
type RecoveryReport struct {
	Bootloader string     `json:"bootloader"`
	Recoveries []Recovery `json:"recoveries"`
}

// blessed checks the good update the upgrade step booted: its entry went on trial, the
// health checks passed (v2's failing wanted check is only logged), and the blessing removed
// the counter. GRUB added the trial's arguments to this boot's command line.
func (r *run) blessed() {
	r.n.Step("v2 passes its health checks and is blessed", "finalize put v2's entry on trial with "+
		fmt.Sprint(SampleTries)+" tries ("+r.countsWhere()+"). bootc-health.service ran the greenboot checks "+
		"before boot-complete.target: v2's wanted check fails on purpose, which is only logged; "+
		"no required check failed, so bootc-health-bless.service removed the counter and v2 stays.")
	g := &guest{r: r}
	h := r.waitBlessed(g, "v2 after the upgrade")
	if v := h.Status.Health; v == nil || v.Verdict != host.HealthGreen {
		r.errorf("v2 after the upgrade: status.health = %+v, want verdict %s", v, host.HealthGreen)
	}
	const wanted = "sample wanted check: this check fails on purpose"
	if out := g.shOut("journalctl -b --no-pager -o cat | grep -F '" + wanted + "'"); !strings.Contains(out, wanted) {
		r.errorf("v2 after the upgrade: the journal lacks the failing wanted check's output %q", wanted)
	}
	r.n.Show("journalctl -u bootc-health.service", g.journal("bootc-health.service"))
	r.n.Show("journalctl -u bootc-health-bless.service", g.journal("bootc-health-bless.service"))
	r.n.Show("ls "+layout.LoaderEntries(layout.Loader(guestBoot)), g.shOut("ls "+layout.LoaderEntries(layout.Loader(guestBoot))))
	// The boot running now was v2's first try: under GRUB its command line has the trial's
	// arguments; systemd-boot adds none (the initramfs learns of the trial otherwise).
	c := g.cmdline()
	trialArgs := strings.Fields(bootloader.TrialArgs)
	if r.o.Bootloader == "grub" {
		r.wantArgs(c, "v2's trial boot under GRUB", trialArgs, nil)
	} else {
		r.wantArgs(c, "v2's trial boot under systemd-boot", nil, trialArgs)
	}
}

// countsWhere says where the running boot loader counts the tries.
func (r *run) countsWhere() string {
	if r.o.Bootloader == "grub" {
		return "GRUB counts them down in grubenv"
	}
	return "systemd-boot counts them in the entry file's name"
}

// waitBlessed waits until the booted deployment is blessed: no entry carries a counter, grubenv
// holds no trial, and status shows no boot count; it returns the status then.
func (r *run) waitBlessed(g *guest, when string) *host.Host {
	deadline := time.Now().Add(blessTimeout)
	for {
		h := g.status(when)
		problems := r.trialLeft(g, h)
		if len(problems) == 0 {
			return h
		}
		if time.Now().After(deadline) {
			r.errorf("%s: not blessed within %s: %s\n%s", when, blessTimeout, strings.Join(problems, "; "),
				g.shOut("systemctl status --no-pager bootc-health.service bootc-health-bless.service 2>&1 | tail -n 30"))
			return h
		}
		time.Sleep(3 * time.Second)
	}
}

// trialLeft lists what still shows a trial: a counted entry file, grubenv's counter or trial
// variable, a boot count in status.
func (r *run) trialLeft(g *guest, h *host.Host) []string {
	var problems []string
	if b := h.Status.Booted; b != nil && b.BootCount != nil {
		problems = append(problems, fmt.Sprintf("status shows the booted entry's bootCount %+v", *b.BootCount))
	}
	for _, f := range strings.Fields(g.shOut("ls " + layout.LoaderEntries(layout.Loader(guestBoot)))) {
		if bootcount.ParseName(f).Counted {
			problems = append(problems, "entry "+f+" carries a counter")
		}
	}
	if env := g.grubenv(); env != nil {
		for _, v := range []string{bootcount.VarBootCounter, bootcount.VarTrial} {
			if val, ok := env.Get(v); ok {
				problems = append(problems, fmt.Sprintf("grubenv sets %s=%s", v, val))
			}
		}
	}
	return problems
}

// grubenv reads the guest's GRUB environment block; nil when there is none (systemd-boot).
func (g *guest) grubenv() *bootcount.Env {
	path := layout.GrubEnv(guestBoot)
	out, _, code := g.sh("cat " + path)
	if code != 0 {
		if g.r.o.Bootloader == "grub" {
			g.r.errorf("reading %s: exit %d", path, code)
		}
		return nil
	}
	env, err := bootcount.ParseEnv(path, []byte(out))
	if err != nil {
		g.r.errorf("%v", err)
		return nil
	}
	return env
}

// badUpdates applies each of BadImages and checks that the host heals by itself.
func (r *run) badUpdates() {
	for _, b := range BadImages {
		r.badUpdate(b)
	}
}

// badUpdate publishes a bad image and applies it with `bootc upgrade --apply`. From then on the
// test only watches: each try of the bad deployment ends in a reboot or a reset, QEMU ends with
// it (-no-reboot) and is started again, as a machine's reset would, with no command in the
// guest, until a boot stays up on the previous deployment. Then status must say what failed
// and why, the journal must carry the fallback message, and (Restage) the staging service must
// not stage the image again.
func (r *run) badUpdate(b BadImage) {
	g := &guest{r: r}
	h := g.status("before the update to " + b.Tag)
	old, oldID := version(h.Status.Booted), g.booted()
	r.n.Step("A bad update heals itself: "+b.Tag+", where "+b.Failure,
		"Publish "+b.Tag+" and run `bootc upgrade --apply`. From then on nobody touches the guest: "+
			r.tryStory(b)+" After "+fmt.Sprint(SampleTries)+" failed tries the boot loader boots v"+old+
			" again, and bootc-health.service, seeing the fallback, records the failed image, makes the "+
			"fallback permanent and says so in the journal and in bootc status.")
	r.check(r.env.Publish(r.ctx, b.Tag))
	digest, err := r.env.latestDigest(r.ctx)
	r.check(err)
	g.waitNetwork()

	start := time.Now()
	// The command reboots the guest at its end: it runs as a unit of its own, so that the
	// agent returns at once and nothing waits on a connection the reboot cuts.
	g.mustSh("systemd-run --unit=bootc-test-upgrade --description='bootc upgrade --apply (test)' bootc upgrade --apply")
	r.waitSelfReboot("bootc-test-upgrade.service")
	r.n.Logf("bootc upgrade --apply staged %s and rebooted the guest after %s", b.Tag, time.Since(start).Round(time.Second))

	boots, g := r.selfHeal(b, oldID)
	h = r.waitFailedUpdate(g, b, digest)
	took := time.Since(start)
	rec := Recovery{Image: b.Tag, Failure: b.Failure, Tries: SampleTries, Boots: len(boots), Target: SampleTries + 1,
		Took: took, Seconds: took.Round(100 * time.Millisecond).Seconds()}
	r.rep.Recoveries = append(r.rep.Recoveries, rec)
	r.rep.Timings = append(r.rep.Timings, Timing{"bad update " + b.Tag + ": upgrade --apply until recovered", took})
	r.writeRecoveries()
	r.n.Logf("%s: back on v%s after %d boots and %s (target: %d boots)", b.Tag, old, rec.Boots, took.Round(time.Second), rec.Target)
	if rec.Boots != rec.Target {
		r.errorf("%s: the host came back after %d boots, want %d (the tries and one fallback boot)", b.Tag, rec.Boots, rec.Target)
	}

	// Every try booted the same new deployment, the last boot the previous one; under GRUB the
	// tries had the trial's arguments and the fallback has none.
	failedID := boots[0].deployment
	for _, hb := range boots[:len(boots)-1] {
		if hb.deployment == "" || hb.deployment == oldID || hb.deployment != failedID {
			r.errorf("%s: boot %d started deployment %q, want the new deployment (%s) on each try", b.Tag, hb.n, hb.deployment, failedID)
		}
		if want := r.o.Bootloader == "grub"; want != hasArgs(hb.cmdline, bootloader.TrialArgs) {
			r.errorf("%s: try %d: kernel command line %q: the trial's %q present: %v, want %v", b.Tag, hb.n, hb.cmdline, bootloader.TrialArgs, !want, want)
		}
	}
	if last := boots[len(boots)-1]; hasArgs(last.cmdline, bootloader.TrialArgs) {
		r.errorf("%s: the fallback boot has the trial's arguments: %q", b.Tag, last.cmdline)
	}

	r.expectBooted(g, h, old)
	if got := g.booted(); got != oldID {
		r.errorf("%s: deployment %s booted after the fallback, want %s", b.Tag, got, oldID)
	}
	// finalize's set holds the update and the deployment it replaced only, so the failed one is
	// the only rollback target left, and stays one, off trial.
	if got := version(h.Status.Rollback); got != strings.TrimPrefix(b.Tag, "v") {
		r.errorf("%s: after the fallback the rollback is %q, want the failed %s (nothing else is left)", b.Tag, got, b.Tag)
	}
	if problems := r.trialLeft(g, h); len(problems) > 0 {
		r.errorf("%s: after the fallback a trial is left: %s", b.Tag, strings.Join(problems, "; "))
	}
	if v := h.Status.Health; v == nil || v.Verdict != host.HealthGreen {
		r.errorf("%s: after the fallback status.health = %+v, want verdict %s (v%s's checks pass)", b.Tag, v, host.HealthGreen, old)
	}
	r.expectFailedUpdate(h, b, digest, failedID)
	r.n.Show("bootc status", g.mustSh("bootc status --format humanreadable"))
	fallback := g.shOut("journalctl -b --no-pager -o cat MESSAGE_ID=" + string(journal.BootFallback))
	r.n.Show("journalctl MESSAGE_ID="+string(journal.BootFallback), fallback)
	if strings.TrimSpace(fallback) == "" {
		r.errorf("%s: the journal of the fallback boot has no message with MESSAGE_ID=%s", b.Tag, journal.BootFallback)
	}
	if motd := g.shOut("cat /run/motd.d/boot-status 2>/dev/null"); motd != "" {
		r.n.Show("cat /run/motd.d/boot-status", motd)
	}
	if b.Restage {
		r.notRestaged(g, b)
	}
	r.expectVar(g)
}

// tryStory tells what each try of b does.
func (r *run) tryStory(b BadImage) string {
	if b.Check != "" {
		return "each boot of " + b.Tag + " runs the health checks before boot-complete.target; the required " +
			b.Check + " fails, bootc-health.service fails, redboot.target runs the red.d hooks and reboots, " +
			"since the deployment is on trial."
	}
	return "each boot of " + b.Tag + " ends in a kernel panic before any health check can run; panic=10 " +
		"on every entry resets the machine after ten seconds."
}

// healBoot is one boot after a bad update's reboot.
type healBoot struct {
	n int
	// deployment and cmdline are what the kernel's command line on the console says.
	deployment, cmdline string
	took                time.Duration
}

// selfHeal starts the machine again each time it ends by itself, counting the boots, until a
// boot stays up on the deployment oldID; it runs no command in the guest meanwhile except
// reading which deployment booted. It returns the boots, the last one being the fallback.
func (r *run) selfHeal(b BadImage, oldID string) ([]healBoot, *guest) {
	limit := SampleTries + 3
	var boots []healBoot
	for n := 1; ; n++ {
		if n > limit {
			r.fatalf("%s: the host did not come back to %s within %d boots", b.Tag, oldID, limit)
		}
		r.check(r.m.Start())
		if w, ok := r.n.(ConsoleWatcher); ok {
			w.Console(r.m.SerialLog())
		}
		start := time.Now()
		err := r.m.WaitBoot(r.ctx, 0)
		final := false
		switch {
		case errors.Is(err, vm.ErrExited):
			// Ended before userspace answered: a panic, or a failed initramfs that rebooted.
		case err != nil:
			r.fatalf("%s: boot %d after the update: %v", b.Tag, n, err)
		default:
			if id := r.bootedNow(); id == oldID {
				final = true
				break
			}
			// A try of the bad deployment: it must end by itself.
			if err := r.m.WaitExit(r.ctx, vm.DefaultBootTimeout); err != nil {
				r.fatalf("%s: boot %d, a try of the new deployment, did not reboot by itself: %v", b.Tag, n, err)
			}
		}
		hb := healBoot{n: n, took: time.Since(start)}
		hb.cmdline = kernelCmdline(r.m.SerialLog())
		hb.deployment = deploymentArg(hb.cmdline)
		boots = append(boots, hb)
		what := fmt.Sprintf("%s, try %d", b.Tag, n)
		if final {
			what = fmt.Sprintf("back after %s", b.Tag)
		}
		r.rep.Boots = append(r.rep.Boots, Boot{What: what, Took: hb.took, SerialLog: r.m.SerialLog()})
		r.n.Show(fmt.Sprintf("boot %d after the update: deployment %s, console %s", n, orNone(hb.deployment), r.m.SerialLog()),
			strings.Join(consoleHighlights(r.m.SerialLog()), "\n"))
		if final {
			r.n.Logf("boot %d (%s): the guest agent answered after %s; the host stays on %s", r.m.Boots(), what, hb.took.Round(time.Second), oldID)
			if err := CheckUnits(r.ctx, r.m); err != nil {
				r.errorf("boot %d (%s): %v", r.m.Boots(), what, err)
			}
			return boots, &guest{r: r}
		}
		r.n.Logf("boot %d (%s) ended by itself after %s", r.m.Boots(), what, hb.took.Round(time.Second))
	}
}

// bootedNow reads which deployment the running guest booted, "" when the guest does not say
// (it may be going down already).
func (r *run) bootedNow() string {
	for i := 0; i < 3 && r.m.Running(); i++ {
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		res, err := r.m.Shell(ctx, "cat /run/bootc/booted.json")
		cancel()
		var bj struct{ Stateroot, ID string }
		if err == nil && res.ExitCode == 0 && json.Unmarshal(res.Stdout, &bj) == nil {
			return bj.Stateroot + "/" + bj.ID
		}
		time.Sleep(2 * time.Second)
	}
	return ""
}

// waitFailedUpdate waits until status lists the failed digest, which bootc-health.service
// records early in the fallback boot, and returns that status.
func (r *run) waitFailedUpdate(g *guest, b BadImage, digest string) *host.Host {
	deadline := time.Now().Add(blessTimeout)
	for {
		h := g.status("after the fallback from " + b.Tag)
		for _, f := range h.Status.FailedUpdates {
			if f.Digest == digest {
				return h
			}
		}
		if time.Now().After(deadline) {
			r.fatalf("%s: status lists no failed update with digest %s within %s after the fallback boot:\n%s", b.Tag, digest, blessTimeout,
				g.shOut("bootc status --json; journalctl -b --no-pager -o cat -u bootc-health.service | tail -n 30"))
		}
		time.Sleep(3 * time.Second)
	}
}

// expectFailedUpdate checks what status says about the failed image.
func (r *run) expectFailedUpdate(h *host.Host, b BadImage, digest, failedID string) {
	var f *host.FailedUpdate
	for i := range h.Status.FailedUpdates {
		if h.Status.FailedUpdates[i].Digest == digest {
			f = &h.Status.FailedUpdates[i]
		}
	}
	if f == nil {
		r.errorf("%s: status.failedUpdates has no entry for %s", b.Tag, digest)
		return
	}
	if f.Deployment != failedID {
		r.errorf("%s: the failed update names deployment %q, want %s", b.Tag, f.Deployment, failedID)
	}
	if f.Tries != 0 && f.Tries != SampleTries {
		r.errorf("%s: the failed update says %d tries, want %d", b.Tag, f.Tries, SampleTries)
	}
	if f.Reason == "" || f.Time.IsZero() {
		r.errorf("%s: the failed update lacks a reason or a time: %+v", b.Tag, *f)
	}
	if b.Check == "" {
		if f.Check != "" {
			r.errorf("%s: the failed update names check %q, but no check ran", b.Tag, f.Check)
		}
		return
	}
	if !strings.Contains(f.Check, b.Check) {
		r.errorf("%s: the failed update names check %q, want %s", b.Tag, f.Check, b.Check)
	}
	if !slices.ContainsFunc(f.LastLines, func(l string) bool { return strings.Contains(l, b.LastLine) }) {
		r.errorf("%s: the failed update's last lines %q lack %q", b.Tag, f.LastLines, b.LastLine)
	}
}

// notRestaged runs the staging service, as its timer would, while the bad image is still the
// registry's latest: it must stage nothing.
func (r *run) notRestaged(g *guest, b BadImage) {
	g.waitNetwork()
	g.mustStart("bootc-fetch-stage-updates.service")
	if h := g.status("after the staging service"); h.Status.Staged != nil {
		r.errorf("%s: the staging service staged %q again although it failed", b.Tag, version(h.Status.Staged))
	}
}

// latestDigest is the manifest digest of the registry's :latest, which the guest fetches.
func (e *Env) latestDigest(ctx context.Context) (string, error) {
	out, err := command(ctx, "skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
		"docker://"+RegistryAddr+"/"+Repository+":latest")
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(out), nil
}

// writeRecoveries writes the recoveries so far to RecoveryFile in the artifacts.
func (r *run) writeRecoveries() {
	data, err := json.MarshalIndent(RecoveryReport{Bootloader: r.o.Bootloader, Recoveries: r.rep.Recoveries}, "", "  ")
	r.check(err)
	r.check(os.WriteFile(filepath.Join(r.o.Artifacts, RecoveryFile), append(data, '\n'), 0o644))
}

// consoleLine picks the console lines that tell a boot's story: the entry GRUB booted, the
// kernel's command line, a panic, the health check, failures and the reboot.
var consoleLine = regexp.MustCompile(`Booting ` + "`" + `|Kernel command line:|Kernel panic|Rebooting in|bootc-health|[Hh]ealth|FAILED|Failed to start|emergency|reboot: |Reached target.*(Reboot|Boot Completion|Multi-User)`)

// consoleHighlights returns those lines of a console log, without escape sequences.
func consoleHighlights(path string) []string {
	data, _ := os.ReadFile(path)
	var out []string
	for _, l := range strings.FieldsFunc(stripEscapes(string(data)), func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); consoleLine.MatchString(l) {
			out = append(out, l)
		}
	}
	const most = 20
	if len(out) > most {
		out = append(out[:most/2], append([]string{"…"}, out[len(out)-most/2:]...)...)
	}
	return out
}

// escapes matches the escape sequences consoles draw with.
var escapes = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])`)

func stripEscapes(s string) string { return escapes.ReplaceAllString(s, "") }

// kernelCmdline is the kernel's command line as it printed it on a console log, "" if absent.
func kernelCmdline(path string) string {
	data, _ := os.ReadFile(path)
	const marker = "Kernel command line: "
	text := stripEscapes(string(data))
	i := strings.Index(text, marker)
	if i < 0 {
		return ""
	}
	line := text[i+len(marker):]
	if j := strings.IndexAny(line, "\r\n"); j >= 0 {
		line = line[:j]
	}
	return strings.TrimSpace(line)
}

// deploymentArg is the deployment a kernel command line boots ("<stateroot>/<id>").
func deploymentArg(cmdline string) string {
	for _, w := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(w, layout.DeploymentKarg+"="); ok {
			return v
		}
	}
	return ""
}

// hasArgs says whether every word of args is an argument of cmdline.
func hasArgs(cmdline, args string) bool {
	have := strings.Fields(cmdline)
	for _, a := range strings.Fields(args) {
		if !slices.Contains(have, a) {
			return false
		}
	}
	return true
}

func orNone(s string) string {
	if s == "" {
		return "(none on the console)"
	}
	return s
}
