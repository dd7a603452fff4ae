package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/assess"
	"gobootc.dev/lib/assess/assesstest"
	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/health"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/sysroottest"
)

var bin string

func TestMain(m *testing.M) { sysroottest.MainWithTools(m, &bin, "bootc-health") }

// host is a physical root booted into deployment aaaa.0, and the root its checks are read from.
type host struct {
	*assesstest.Host
	root string // the checks' root: /usr/lib/greenboot, /etc/greenboot, run/motd.d …
	out  string // a directory the hooks write to
}

// newHost is a GRUB host booted into aaaa.0, its one deployment.
func newHost(t *testing.T) *host {
	return newLoaderHost(t, assess.GRUB)
}

func newLoaderHost(t *testing.T, loader assess.Loader) *host {
	envtest.NeedTool(t, "bash")
	h := &host{Host: assesstest.New(t, loader), root: t.TempDir(), out: t.TempDir()}
	h.Deploy("aaaa.0", "1")
	h.WriteSet(0, "aaaa.0")
	h.PowerOn("")
	return h
}

func (h *host) file(t *testing.T, rel string, mode os.FileMode, content string) {
	t.Helper()
	path := filepath.Join(h.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// run runs bootc-health with args, the environment pointing it at the host, and returns its
// stdout, stderr and exit status. wrap, if any, is a command line the tool runs under.
func (h *host) run(t *testing.T, env []string, wrap []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	argv := append(append(wrap, filepath.Join(bin, "bootc-health")), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append([]string{"BOOTC_SYSROOT=" + h.Root.Phys, "BOOTC_RUN_DIR=" + h.Root.Run,
		"BOOTC_CMDLINE=/nonexistent", "BOOTC_EFIVARS_DIR=" + h.EFIVars, "PATH=/usr/bin:/bin", "OUT=" + h.out}, env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return o.String(), e.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// hook copies the record it is pointed at and notes the verdict it is given, so the test sees
// what a hook finds when it runs.
const hook = "cp \"$BOOTC_HEALTH_RECORD\" \"$OUT/record-seen-by-$(basename \"$0\")\"\necho \"$BOOTC_HEALTH_VERDICT\" > \"$OUT/verdict-seen-by-$(basename \"$0\")\"\n"

func TestCheckGreen(t *testing.T) {
	h := newHost(t)
	h.file(t, "usr/lib/greenboot/check/required.d/10_ok.sh", 0o644, "echo all good\n")
	h.file(t, "etc/greenboot/check/wanted.d/20_flaky.sh", 0o644, "echo slow mirror\nexit 1\n")
	h.file(t, "etc/greenboot/green.d/50_green.sh", 0o644, hook)
	h.file(t, "etc/greenboot/red.d/50_red.sh", 0o644, hook)
	stdout, stderr, code := h.run(t, nil, nil, "check", "--root", h.root)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, want := range []string{"Script '10_ok.sh' SUCCESS\n", "Script '20_flaky.sh' FAILURE (exit code '1'). Continuing...\n", "Boot Status is GREEN - Health Check SUCCESS\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	// Without a journal (as here) the checks' output goes to stderr under their names.
	if !strings.Contains(stderr, "10_ok.sh: all good\n") || !strings.Contains(stderr, "20_flaky.sh: slow mirror\n") {
		t.Errorf("stderr:\n%s", stderr)
	}
	rec, err := record.ReadHealth(h.Root.Health())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Verdict != record.Green || rec.Stateroot != "default" || rec.ID != "aaaa.0" || rec.ManifestDigest != sysroottest.Digest('a') || rec.BootID == "" || len(rec.Checks) != 2 {
		t.Errorf("record %+v", rec)
	}
	if kept := readFile(t, h.Root.DeploymentHealth("default", "aaaa.0")); kept != readFile(t, h.Root.Health()) {
		t.Errorf("kept record differs:\n%s", kept)
	}
	if got := readFile(t, filepath.Join(h.root, health.MOTDPath)); got != "Script '20_flaky.sh' FAILURE (exit code '1'). Continuing...\nBoot Status is GREEN - Health Check SUCCESS\n" {
		t.Errorf("login message %q", got)
	}
	if _, err := os.Stat(filepath.Join(h.out, "verdict-seen-by-50_green.sh")); err == nil {
		t.Error("check ran the green hook: that is bless's")
	}
	// boot-complete.target is reached: bless runs the green hooks. No trial: nothing to bless in
	// the entries.
	stdout, stderr, code = h.run(t, nil, nil, "bless", "--root", h.root)
	if code != 0 || strings.Contains(stdout, "Blessed") {
		t.Fatalf("bless: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	rec, err = record.ReadHealth(h.Root.Health())
	if err != nil || rec.Assessment == nil || rec.Assessment.Action != "blessed" || rec.Assessment.TriesLeft != nil {
		t.Errorf("record after bless %+v, %v", rec, err)
	}
	if got := readFile(t, filepath.Join(h.out, "verdict-seen-by-50_green.sh")); got != "GREEN\n" {
		t.Errorf("green hook saw %q", got)
	}
	if got := readFile(t, filepath.Join(h.out, "record-seen-by-50_green.sh")); got != readFile(t, h.Root.Health()) {
		t.Errorf("green hook saw the record %q", got)
	}
	if _, err := os.Stat(filepath.Join(h.out, "verdict-seen-by-50_red.sh")); err == nil {
		t.Error("red hook ran on a GREEN boot")
	}
}

func TestCheckRed(t *testing.T) {
	h := newHost(t)
	h.file(t, "etc/greenboot/check/required.d/10_failing_check.sh", 0o644, "echo app.service is not running\nexit 1\n")
	h.file(t, "etc/greenboot/check/required.d/20_never.sh", 0o644, "touch \"$OUT/ran\"\n")
	h.file(t, "usr/lib/greenboot/red.d/10_red.sh", 0o644, hook)
	h.file(t, "etc/bootc/health/red.d/20_failing_hook", 0o755, "#!/bin/bash\n"+hook+"exit 7\n")
	h.file(t, "etc/greenboot/green.d/50_green.sh", 0o644, hook)
	stdout, stderr, code := h.run(t, nil, nil, "check", "--root", h.root)
	if code != 1 {
		t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "Boot Status is RED - Health Check FAILURE!\n") || !strings.Contains(stdout, "'20_never.sh' was skipped due to a previous failure\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
	if strings.Contains(stderr, "error:") {
		t.Errorf("the verdict was reported twice:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(h.out, "ran")); err == nil {
		t.Error("a required check ran after a failure")
	}
	rec, err := record.ReadHealth(h.Root.Health())
	if err != nil {
		t.Fatal(err)
	}
	f := rec.Failure()
	if rec.Verdict != record.Red || f == nil || f.Path != "/etc/greenboot/check/required.d/10_failing_check.sh" || *f.ExitStatus != 1 || f.LastLines[0] != "app.service is not running" {
		t.Fatalf("record %+v", rec)
	}
	kept, err := record.ReadHealth(h.Root.DeploymentHealth("default", "aaaa.0"))
	if err != nil || kept.Failed != rec.Failed || kept.Finished != rec.Finished {
		t.Errorf("kept record %+v, %v", kept, err)
	}
	if _, err := os.Stat(filepath.Join(h.out, "verdict-seen-by-10_red.sh")); err == nil {
		t.Error("check ran a red hook: that is red's")
	}
	// redboot.target: red runs the hooks and, with no update on trial, does not reboot.
	stdout, stderr, code = h.run(t, nil, nil, "red", "--root", h.root, "--reboot-command", "touch "+filepath.Join(h.out, "rebooted"))
	if code != 0 {
		t.Fatalf("red: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	const stayUp = "SYSTEM is UNHEALTHY, but a reboot would not help: deployment default/aaaa.0 is not on trial, so a reboot would boot it again. Manual intervention necessary.\n"
	if !strings.Contains(stdout, stayUp) {
		t.Errorf("red stdout:\n%s", stdout)
	}
	if _, err := os.Stat(filepath.Join(h.out, "rebooted")); err == nil {
		t.Error("red rebooted a host with no update on trial")
	}
	rec, err = record.ReadHealth(h.Root.Health())
	if err != nil || rec.Assessment == nil || rec.Assessment.Action != "stay-up" || rec.Assessment.TriesLeft != nil {
		t.Errorf("record after red %+v, %v", rec, err)
	}
	for _, hook := range []string{"10_red.sh", "20_failing_hook"} {
		if got := readFile(t, filepath.Join(h.out, "verdict-seen-by-"+hook)); got != "RED\n" {
			t.Errorf("%s saw %q", hook, got)
		}
		if got := readFile(t, filepath.Join(h.out, "record-seen-by-"+hook)); got != readFile(t, h.Root.Health()) {
			t.Errorf("%s saw the record %q", hook, got)
		}
	}
	motd := readFile(t, filepath.Join(h.root, health.MOTDPath))
	for _, want := range []string{
		"Script '10_failing_check.sh' FAILURE (exit code '1'). Continuing...\nBoot Status is RED - Health Check FAILURE!\n",
		"Failed check: /etc/greenboot/check/required.d/10_failing_check.sh (exit code '1') at ",
		"Deployment: default/aaaa.0 (" + sysroottest.Digest('a') + ")\n",
		"    app.service is not running\n",
		stayUp,
	} {
		if !strings.Contains(motd, want) {
			t.Errorf("login message lacks %q:\n%s", want, motd)
		}
	}
}

// BOOTC_HEALTH_TIMEOUT reaches the checks; the check is killed and the boot is RED.
func TestCheckTimeout(t *testing.T) {
	h := newHost(t)
	h.file(t, "etc/bootc/health/required.d/10_hang.sh", 0o644, "echo starting\nexec sleep 60\n")
	stdout, stderr, code := h.run(t, []string{"BOOTC_HEALTH_TIMEOUT=500ms"}, nil, "check", "--root", h.root)
	if code != 1 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "Script '10_hang.sh' FAILURE (timed out after 500ms, killed). Continuing...\n") {
		t.Errorf("stdout:\n%s", stdout)
	}
	rec, err := record.ReadHealth(h.Root.Health())
	if err != nil || rec.Failure() == nil || rec.Failure().Outcome != record.CheckTimedOut {
		t.Errorf("record %+v, %v", rec, err)
	}
}

// On a booted host the physical root is a read-only mount: the record is kept through a child
// in a private mount namespace, and the checks themselves see the root read-only.
func TestCheckKeepsRecordOnReadOnlySysroot(t *testing.T) {
	envtest.NeedRoot(t)
	envtest.NeedTool(t, "unshare", "mount")
	h := newHost(t)
	h.file(t, "etc/greenboot/check/required.d/10_ro.sh", 0o644, "touch \"$BOOTC_SYSROOT/written-by-check\" 2>/dev/null && exit 1; exit 0\n")
	phys := h.Root.Phys
	wrap := []string{"unshare", "--mount", "--propagation", "private", "sh", "-ec",
		`mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"`, phys}
	stdout, stderr, code := h.run(t, nil, wrap, "check", "--root", h.root)
	if code != 0 {
		if strings.Contains(stderr, "mount:") {
			envtest.Missing(t, "bind mounts in a private mount namespace: %s", stderr)
		}
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if strings.Contains(stderr, "warning") {
		t.Errorf("stderr:\n%s", stderr)
	}
	kept, err := record.ReadHealth(h.Root.DeploymentHealth("default", "aaaa.0"))
	if err != nil || kept.Verdict != record.Green || kept.ID != "aaaa.0" {
		t.Errorf("kept record %+v, %v", kept, err)
	}
}

func TestList(t *testing.T) {
	h := newHost(t)
	h.file(t, "etc/greenboot/greenboot.conf", 0o644, "DISABLED_HEALTHCHECKS=(\"02_off.sh\")\n")
	h.file(t, "usr/lib/greenboot/check/required.d/01_a.sh", 0o644, "")
	h.file(t, "usr/lib/greenboot/check/required.d/02_off.sh", 0o644, "")
	h.file(t, "usr/lib/greenboot/check/wanted.d/sub/03_b.sh", 0o644, "")
	h.file(t, "etc/bootc/health/required.d/probe", 0o755, "#!/bin/sh\n")
	h.file(t, "etc/bootc/health/required.d/notes.txt", 0o644, "")
	h.file(t, "etc/bootc/health/units.d/app.toml", 0o644, "required = [\"app.service\", \"db.service\"]\n")
	h.file(t, "etc/bootc/health/units.d/bad.toml", 0o644, "require = []\n")
	h.file(t, "etc/greenboot/red.d/90_report.sh", 0o644, "")
	stdout, stderr, code := h.run(t, nil, nil, "list", "--root", h.root)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `required  script      /usr/lib/greenboot/check/required.d/01_a.sh
required  script      /usr/lib/greenboot/check/required.d/02_off.sh  disabled by DISABLED_HEALTHCHECKS
wanted    script      /usr/lib/greenboot/check/wanted.d/sub/03_b.sh
required  executable  /etc/bootc/health/required.d/probe
required  units       /etc/bootc/health/units.d/app.toml             app.service db.service
required  units       /etc/bootc/health/units.d/bad.toml             invalid: units list: unknown key "require" (want required, wanted, timeout)
red       script      /etc/greenboot/red.d/90_report.sh
`
	if stdout != want {
		t.Errorf("list:\n%s\nwant:\n%s", stdout, want)
	}
	empty := t.TempDir()
	stdout, stderr, code = h.run(t, nil, nil, "list", "--root", empty)
	if code != 0 || stdout != "" || stderr != "No health checks or hooks under "+empty+".\n" {
		t.Errorf("empty root: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
