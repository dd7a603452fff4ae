package health

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/record"
)

// entry is one message or output line a run reported.
type entry struct {
	id     journal.ID
	pri    journal.Priority
	name   string // output lines: the check's name
	text   string
	fields map[string]string
}

// recorder is a Log that keeps everything, so tests see what the journal would get.
type recorder struct {
	mu       sync.Mutex
	messages []entry
	output   []entry
}

func (r *recorder) Message(id journal.ID, pri journal.Priority, text string, fields map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = append(r.messages, entry{id: id, pri: pri, text: text, fields: fields})
}

func (r *recorder) Output(name string, pri journal.Priority, line string, fields map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.output = append(r.output, entry{pri: pri, name: name, text: line, fields: fields})
}

// message returns the message with this text, or fails.
func (r *recorder) message(t *testing.T, text string) entry {
	t.Helper()
	for _, m := range r.messages {
		if m.text == text {
			return m
		}
	}
	t.Fatalf("no message %q among %q", text, r.texts())
	return entry{}
}

func (r *recorder) texts() []string {
	var out []string
	for _, m := range r.messages {
		out = append(out, m.text)
	}
	return out
}

// write creates root/rel with mode and content.
func write(t *testing.T, root, rel string, mode os.FileMode, content string) string {
	t.Helper()
	path := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

// tracer is a shell line appending the script's path to the trace file, for the order checks ran in.
const tracer = "echo \"$0\" >> \"$TRACE\"\n"

// newRoot is an empty root with a trace file the checks append to, named in their environment.
func newRoot(t *testing.T) (root, trace string, opts Options, log *recorder) {
	t.Helper()
	envtest.NeedTool(t, "bash")
	root = t.TempDir()
	trace = filepath.Join(t.TempDir(), "trace")
	log = &recorder{}
	opts = Options{Log: log, Env: append(os.Environ(), "TRACE="+trace), Timeout: time.Minute, Grace: 200 * time.Millisecond, Poll: 20 * time.Millisecond}
	return root, trace, opts, log
}

// traced returns the host paths of the checks that ran, in order.
func traced(t *testing.T, root, trace string) []string {
	t.Helper()
	data, err := os.ReadFile(trace)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Fields(string(data)) {
		out = append(out, hostPath(root, l))
	}
	return out
}

func assess(t *testing.T, root string, opts Options) (*Plan, *record.Health) {
	t.Helper()
	p, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.Assess(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, h
}

func paths(checks []Check) []string {
	var out []string
	for _, c := range checks {
		out = append(out, c.Path)
	}
	return out
}

func outcomes(h *record.Health) map[string]record.CheckOutcome {
	m := map[string]record.CheckOutcome{}
	for _, c := range h.Checks {
		m[c.Path+" "+c.Kind] = c.Outcome
	}
	return m
}

// The order is greenboot's: /usr/lib required.d, wanted.d, /etc required.d, wanted.d (each
// searched recursively, hidden files included, sorted by path), then this project's directories
// the same way, each kind followed by its tier's units lists.
func TestOrder(t *testing.T) {
	root, trace, opts, _ := newRoot(t)
	fakeSystemctl(t, map[string]string{"app.service": "active", "metrics.service": "active"})
	for _, rel := range []string{
		"etc/bootc/health/wanted.d/50.sh",
		"etc/bootc/health/required.d/50.sh",
		"usr/lib/bootc/health/wanted.d/50.sh",
		"usr/lib/bootc/health/required.d/50.sh",
		"etc/greenboot/check/wanted.d/50.sh",
		"etc/greenboot/check/required.d/50.sh",
		"usr/lib/greenboot/check/wanted.d/50.sh",
		"usr/lib/greenboot/check/required.d/b.sh",
		"usr/lib/greenboot/check/required.d/a/z.sh",
		"usr/lib/greenboot/check/required.d/a/.hidden.sh",
		"usr/lib/greenboot/check/required.d/a.sh",
		"usr/lib/greenboot/check/required.d/a-b.sh",
		"usr/lib/greenboot/check/required.d/.hidden.sh",
		"usr/lib/greenboot/check/required.d/B.sh",
	} {
		write(t, root, rel, 0o644, tracer)
	}
	write(t, root, "usr/lib/bootc/health/units.d/app.toml", 0o644, "required = [\"app.service\"]\nwanted = [\"metrics.service\"]\n")
	want := []string{
		"/usr/lib/greenboot/check/required.d/.hidden.sh",
		"/usr/lib/greenboot/check/required.d/B.sh",
		"/usr/lib/greenboot/check/required.d/a-b.sh",
		"/usr/lib/greenboot/check/required.d/a.sh",
		"/usr/lib/greenboot/check/required.d/a/.hidden.sh",
		"/usr/lib/greenboot/check/required.d/a/z.sh",
		"/usr/lib/greenboot/check/required.d/b.sh",
		"/usr/lib/greenboot/check/wanted.d/50.sh",
		"/etc/greenboot/check/required.d/50.sh",
		"/etc/greenboot/check/wanted.d/50.sh",
		"/usr/lib/bootc/health/required.d/50.sh",
		"/usr/lib/bootc/health/units.d/app.toml",
		"/usr/lib/bootc/health/wanted.d/50.sh",
		"/usr/lib/bootc/health/units.d/app.toml",
		"/etc/bootc/health/required.d/50.sh",
		"/etc/bootc/health/wanted.d/50.sh",
	}
	p, h := assess(t, root, opts)
	if got := paths(p.Checks); !slices.Equal(got, want) {
		t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	scripts := slices.DeleteFunc(slices.Clone(want), func(s string) bool { return strings.HasSuffix(s, ".toml") })
	if got := traced(t, root, trace); !slices.Equal(got, scripts) {
		t.Errorf("ran:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(scripts, "\n"))
	}
	if h.Verdict != record.Green || len(h.Checks) != len(want) {
		t.Errorf("verdict %s with %d checks, want GREEN with %d", h.Verdict, len(h.Checks), len(want))
	}
	kinds := []Kind{}
	for _, c := range p.Checks {
		if strings.HasSuffix(c.Path, ".toml") {
			kinds = append(kinds, c.Kind)
		}
	}
	if !slices.Equal(kinds, []Kind{Required, Wanted}) {
		t.Errorf("units list kinds = %v", kinds)
	}
}

// A *.sh file runs with bash whatever its mode and shebang: a mode-0644 script without a
// shebang fails the boot, and a shebang naming a missing interpreter does not matter.
func TestScriptsRunWithBash(t *testing.T) {
	root, _, opts, log := newRoot(t)
	write(t, root, "etc/greenboot/check/required.d/05_shebang.sh", 0o755, "#!/nonexistent/interpreter\necho fine\n")
	fail := write(t, root, "etc/greenboot/check/required.d/10_failing_check.sh", 0o644, "echo 'the service is down'\nexit 3\n")
	_, h := assess(t, root, opts)
	if h.Verdict != record.Red || h.Failed != "/etc/greenboot/check/required.d/10_failing_check.sh" {
		t.Fatalf("verdict %s, failed %q", h.Verdict, h.Failed)
	}
	f := h.Failure()
	if f == nil || f.ExitStatus == nil || *f.ExitStatus != 3 || f.Outcome != record.CheckFailed || f.Type != "script" {
		t.Fatalf("failure = %+v", f)
	}
	if !slices.Equal(f.LastLines, []string{"the service is down"}) {
		t.Errorf("last lines = %q", f.LastLines)
	}
	if o := outcomes(h)["/etc/greenboot/check/required.d/05_shebang.sh required"]; o != record.CheckPassed {
		t.Errorf("script with a bad shebang: %s", o)
	}
	m := log.message(t, "Script '10_failing_check.sh' FAILURE (exit code '3'). Continuing...")
	if m.pri != journal.Emerg || m.id != journal.HealthCheck || m.fields["BOOTC_HEALTH_CHECK"] != hostPath(root, fail) {
		t.Errorf("failure message = %+v", m)
	}
	if m := log.message(t, "Boot Status is RED - Health Check FAILURE!"); m.id != journal.HealthRed || m.pri != journal.Emerg {
		t.Errorf("verdict message = %+v", m)
	}
	log.message(t, "Script '05_shebang.sh' SUCCESS")
}

// Executables of any other name run directly; other files are ignored.
func TestOtherFiles(t *testing.T) {
	root, trace, opts, _ := newRoot(t)
	probe := write(t, root, "usr/lib/bootc/health/required.d/probe", 0o755, "#!/bin/sh\n"+tracer)
	write(t, root, "usr/lib/bootc/health/required.d/README", 0o644, "exit 1\n")
	write(t, root, "usr/lib/bootc/health/required.d/check.py", 0o600, "exit 1\n")
	write(t, root, "usr/lib/greenboot/check/wanted.d/notes.txt", 0o644, "exit 1\n")
	if err := os.Symlink("probe", filepath.Join(root, "usr/lib/bootc/health/required.d/zz-link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("README", filepath.Join(root, "usr/lib/bootc/health/required.d/zz-plain-link")); err != nil {
		t.Fatal(err)
	}
	garbage := write(t, root, "etc/bootc/health/wanted.d/not-a-program", 0o755, "\x7fELF garbage")
	p, h := assess(t, root, opts)
	if got, want := paths(p.Checks), []string{hostPath(root, probe), "/usr/lib/bootc/health/required.d/zz-link", hostPath(root, garbage)}; !slices.Equal(got, want) {
		t.Fatalf("plan = %q, want %q", got, want)
	}
	if got := traced(t, root, trace); !slices.Equal(got, []string{hostPath(root, probe), "/usr/lib/bootc/health/required.d/zz-link"}) {
		t.Errorf("ran %q", got)
	}
	if h.Verdict != record.Green {
		t.Errorf("verdict %s", h.Verdict)
	}
	g := h.Checks[2]
	if g.Outcome != record.CheckFailed || g.Type != "executable" || !strings.Contains(g.Error, "exec format error") {
		t.Errorf("a file that cannot be executed: %+v", g)
	}
}

// The first required failure ends the run: nothing after it runs, every check after it is
// reported skipped, and the verdict is RED.
func TestFailFast(t *testing.T) {
	root, trace, opts, log := newRoot(t)
	write(t, root, "usr/lib/greenboot/check/required.d/10_ok.sh", 0o644, tracer)
	write(t, root, "usr/lib/greenboot/check/required.d/20_bad.sh", 0o644, tracer+"exit 1\n")
	write(t, root, "usr/lib/greenboot/check/required.d/30_later.sh", 0o644, tracer)
	write(t, root, "usr/lib/greenboot/check/wanted.d/10_wanted.sh", 0o644, tracer)
	write(t, root, "etc/greenboot/check/required.d/10_admin.sh", 0o644, tracer)
	write(t, root, "etc/bootc/health/required.d/10_ours.sh", 0o644, tracer)
	_, h := assess(t, root, opts)
	if got := traced(t, root, trace); !slices.Equal(got, []string{"/usr/lib/greenboot/check/required.d/10_ok.sh", "/usr/lib/greenboot/check/required.d/20_bad.sh"}) {
		t.Errorf("ran %q", got)
	}
	if h.Verdict != record.Red || h.Failed != "/usr/lib/greenboot/check/required.d/20_bad.sh" {
		t.Errorf("verdict %s, failed %q", h.Verdict, h.Failed)
	}
	for _, c := range h.Checks[2:] {
		if c.Outcome != record.CheckSkipped {
			t.Errorf("%s: %s, want skipped", c.Path, c.Outcome)
		}
	}
	if len(h.Checks) != 6 {
		t.Errorf("%d checks recorded, want 6", len(h.Checks))
	}
	log.message(t, "'30_later.sh' was skipped due to a previous failure")
	log.message(t, "'10_ours.sh' was skipped due to a previous failure")
}

// A wanted check's failure is reported and kept in the record, but the boot is GREEN.
func TestWantedFailure(t *testing.T) {
	root, trace, opts, log := newRoot(t)
	write(t, root, "etc/greenboot/check/wanted.d/10_slow_dns.sh", 0o644, "echo no answer from 192.0.2.1\nexit 2\n")
	write(t, root, "etc/greenboot/check/wanted.d/20_next.sh", 0o644, tracer)
	write(t, root, "etc/bootc/health/required.d/10_ok.sh", 0o644, tracer)
	_, h := assess(t, root, opts)
	if h.Verdict != record.Green || h.Failed != "" || h.Failure() != nil {
		t.Fatalf("verdict %s, failed %q", h.Verdict, h.Failed)
	}
	if got := traced(t, root, trace); len(got) != 2 {
		t.Errorf("ran %q, want both checks after the wanted failure", got)
	}
	w := h.Checks[0]
	if w.Outcome != record.CheckFailed || *w.ExitStatus != 2 || !slices.Equal(w.LastLines, []string{"no answer from 192.0.2.1"}) {
		t.Errorf("wanted failure = %+v", w)
	}
	if m := log.message(t, "Script '10_slow_dns.sh' FAILURE (exit code '2'). Continuing..."); m.pri != journal.Crit {
		t.Errorf("wanted failure logged at %d, want crit", m.pri)
	}
	log.message(t, "Boot Status is GREEN - Health Check SUCCESS")
	if got := MOTD(h); got != "Script '10_slow_dns.sh' FAILURE (exit code '2'). Continuing...\nBoot Status is GREEN - Health Check SUCCESS\n" {
		t.Errorf("login message = %q", got)
	}
}

// DISABLED_HEALTHCHECKS names files that do not run, in any directory and phase.
func TestDisabled(t *testing.T) {
	root, trace, opts, log := newRoot(t)
	write(t, root, "etc/greenboot/greenboot.conf", 0o644, "GREENBOOT_MAX_BOOT_ATTEMPTS=2\nMICROSHIFT_WAIT_TIMEOUT_SEC=600\n"+
		"DISABLED_HEALTHCHECKS=(\n  \"01_update_platforms_check.sh\" # no remotes on bootc\n  'probe'\n  \"hook.sh\"\n)\n")
	write(t, root, "usr/lib/greenboot/check/required.d/01_update_platforms_check.sh", 0o644, tracer+"exit 1\n")
	write(t, root, "etc/greenboot/check/required.d/01_update_platforms_check.sh", 0o644, tracer+"exit 1\n")
	write(t, root, "etc/bootc/health/required.d/probe", 0o755, "#!/bin/sh\n"+tracer+"exit 1\n")
	write(t, root, "etc/bootc/health/required.d/ok.sh", 0o644, tracer)
	write(t, root, "etc/greenboot/green.d/hook.sh", 0o644, tracer)
	p, h := assess(t, root, opts)
	if h.Verdict != record.Green {
		t.Fatalf("verdict %s: %+v", h.Verdict, h.Checks)
	}
	if got := traced(t, root, trace); !slices.Equal(got, []string{"/etc/bootc/health/required.d/ok.sh"}) {
		t.Errorf("ran %q", got)
	}
	if o := outcomes(h); o["/etc/bootc/health/required.d/probe required"] != record.CheckDisabled ||
		o["/usr/lib/greenboot/check/required.d/01_update_platforms_check.sh required"] != record.CheckDisabled {
		t.Errorf("outcomes %v", o)
	}
	log.message(t, "'probe' was skipped, as specified in config")
	hooks, err := p.RunHooks(context.Background(), h.Verdict, nil, opts)
	if err != nil || len(hooks) != 1 || hooks[0].Outcome != record.CheckDisabled {
		t.Errorf("hooks = %+v, %v", hooks, err)
	}
	if got := traced(t, root, trace); len(got) != 1 {
		t.Errorf("a disabled hook ran: %q", got)
	}
	if len(p.Warnings) != 0 {
		t.Errorf("warnings %q", p.Warnings)
	}
}

// A check that runs into its timeout is killed with every process it started, even those that
// ignore SIGTERM, and fails the boot.
func TestTimeout(t *testing.T) {
	root, _, opts, _ := newRoot(t)
	pids := t.TempDir()
	opts.Timeout = 500 * time.Millisecond
	opts.Env = append(opts.Env, "PIDS="+pids)
	write(t, root, "usr/lib/greenboot/check/required.d/10_hang.sh", 0o644, `
sleep 300 & echo $! > "$PIDS/child"
(trap '' TERM; exec sleep 301) & echo $! > "$PIDS/stubborn"
echo "waiting for the cluster"
sleep 302
`)
	start := time.Now()
	_, h := assess(t, root, opts)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("the run took %v", elapsed)
	}
	f := h.Failure()
	if h.Verdict != record.Red || f == nil || f.Outcome != record.CheckTimedOut || f.TimedOutAfter != "500ms" {
		t.Fatalf("verdict %s, failure %+v", h.Verdict, f)
	}
	if !slices.Equal(f.LastLines, []string{"waiting for the cluster"}) {
		t.Errorf("last lines %q", f.LastLines)
	}
	if got := Reason(*f); got != "timed out after 500ms, killed" {
		t.Errorf("reason %q", got)
	}
	for _, name := range []string{"child", "stubborn"} {
		data, err := os.ReadFile(filepath.Join(pids, name))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		if stillAlive(pid) {
			t.Errorf("%s (pid %d) still runs after the timeout", name, pid)
		}
	}
}

// stillAlive reports whether pid runs for the next 5 s: a killed process leaves the run queue a
// moment after kill(2) returns, later still on a busy host.
func stillAlive(pid int) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !alive(pid) {
			return false
		}
	}
	return true
}

// alive reports whether pid runs: it exists and is not a zombie waiting for its parent.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// "pid (comm) S …": the state follows the last parenthesis.
	s := string(data)
	rest := s[strings.LastIndexByte(s, ')')+1:]
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

// Output goes to the log line by line under the check's name, stdout and stderr in the order
// written, priority prefixes honoured; the record keeps the last lines.
func TestOutput(t *testing.T) {
	root, _, opts, log := newRoot(t)
	opts.Lines = 4
	write(t, root, "etc/greenboot/check/required.d/40_app.sh", 0o644, `
for i in 1 2 3 4 5; do echo "out $i"; done
echo "err 1" >&2
echo "<3>disk full"
printf 'no newline'
exit 1
`)
	_, h := assess(t, root, opts)
	f := h.Failure()
	if f == nil {
		t.Fatalf("no failure: %+v", h)
	}
	if want := []string{"out 5", "err 1", "disk full", "no newline"}; !slices.Equal(f.LastLines, want) {
		t.Errorf("last lines %q, want %q", f.LastLines, want)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	var lines []string
	for _, o := range log.output {
		if o.name != "40_app.sh" || o.fields["BOOTC_HEALTH_CHECK"] != "/etc/greenboot/check/required.d/40_app.sh" {
			t.Errorf("output line %+v", o)
		}
		want := journal.Info
		if o.text == "disk full" {
			want = journal.Err
		}
		if o.pri != want {
			t.Errorf("%q at priority %d, want %d", o.text, o.pri, want)
		}
		lines = append(lines, o.text)
	}
	if want := []string{"out 1", "out 2", "out 3", "out 4", "out 5", "err 1", "disk full", "no newline"}; !slices.Equal(lines, want) {
		t.Errorf("output %q, want %q", lines, want)
	}
}

// A check killed by a signal fails and says which.
func TestSignal(t *testing.T) {
	root, _, opts, _ := newRoot(t)
	write(t, root, "etc/greenboot/check/required.d/crash.sh", 0o644, "kill -SEGV $$\n")
	_, h := assess(t, root, opts)
	f := h.Failure()
	if f == nil || f.Signal != "SIGSEGV" || f.ExitStatus != nil || Reason(*f) != "killed by SIGSEGV" {
		t.Fatalf("failure %+v", f)
	}
}

// A root without checks is GREEN, as greenboot's is.
func TestNoChecks(t *testing.T) {
	root, _, opts, _ := newRoot(t)
	p, h := assess(t, root, opts)
	if len(p.Checks)+len(p.Green)+len(p.Red) != 0 || h.Verdict != record.Green || len(h.Checks) != 0 {
		t.Errorf("plan %+v, record %+v", p, h)
	}
}

// Hooks run in order, each whatever the others did, with the environment they are given; a
// failing hook changes nothing.
func TestHooks(t *testing.T) {
	root, trace, opts, log := newRoot(t)
	hook := "echo \"$0 $BOOTC_HEALTH_VERDICT\" >> \"$TRACE\"\n"
	write(t, root, "usr/lib/greenboot/green.d/10.sh", 0o644, hook)
	write(t, root, "etc/greenboot/green.d/10.sh", 0o644, hook+"exit 4\n")
	write(t, root, "etc/bootc/health/green.d/20-notify", 0o755, "#!/bin/bash\n"+hook)
	write(t, root, "usr/lib/greenboot/red.d/10.sh", 0o644, hook)
	p, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := p.RunHooks(context.Background(), record.Green, []string{"BOOTC_HEALTH_VERDICT=GREEN"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(trace)
	want := fmt.Sprintf("%[1]s/usr/lib/greenboot/green.d/10.sh GREEN\n%[1]s/etc/greenboot/green.d/10.sh GREEN\n%[1]s/etc/bootc/health/green.d/20-notify GREEN\n", root)
	if string(data) != want {
		t.Errorf("hooks ran:\n%s\nwant:\n%s", data, want)
	}
	if len(hooks) != 3 || hooks[1].Outcome != record.CheckFailed || hooks[2].Outcome != record.CheckPassed || hooks[1].Kind != "green" {
		t.Errorf("hooks = %+v", hooks)
	}
	if m := log.message(t, "Script '10.sh' FAILURE (exit code '4'). Continuing..."); m.pri != journal.Err {
		t.Errorf("hook failure at priority %d", m.pri)
	}
	if err := os.Remove(trace); err != nil {
		t.Fatal(err)
	}
	if _, err := p.RunHooks(context.Background(), record.Red, []string{"BOOTC_HEALTH_VERDICT=RED"}, opts); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(trace); string(data) != root+"/usr/lib/greenboot/red.d/10.sh RED\n" {
		t.Errorf("red hooks ran %q", data)
	}
}

// A run stopped from outside kills the running check and gives no verdict.
func TestCanceled(t *testing.T) {
	root, _, opts, _ := newRoot(t)
	pids := t.TempDir()
	opts.Env = append(opts.Env, "PIDS="+pids)
	write(t, root, "etc/greenboot/check/required.d/hang.sh", 0o644, "echo $$ > \"$PIDS/main\"\nsleep 300\n")
	p, err := Load(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for range 1000 {
			// The shell creates the file before it writes the pid into it.
			if data, err := os.ReadFile(filepath.Join(pids, "main")); err == nil && strings.HasSuffix(string(data), "\n") {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
	}()
	h, err := p.Assess(ctx, opts)
	if err == nil || h != nil || !strings.Contains(err.Error(), "stopped before they finished") {
		t.Fatalf("Assess = %+v, %v", h, err)
	}
	data, _ := os.ReadFile(filepath.Join(pids, "main"))
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(data))); pid == 0 || stillAlive(pid) {
		t.Errorf("check (pid %d) not stopped", pid)
	}
}

func TestMOTD(t *testing.T) {
	one, three := 1, 3
	finished := time.Date(2026, 12, 1, 10, 20, 30, 0, time.UTC)
	h := &record.Health{
		Verdict: record.Red, Stateroot: "default", ID: "3", ManifestDigest: "sha256:ab", Finished: finished,
		Failed: "/etc/greenboot/check/required.d/10_failing_check.sh",
		Checks: []record.HealthCheck{
			{Path: "/usr/lib/greenboot/check/required.d/00_ok.sh", Kind: "required", Type: "script", Outcome: record.CheckPassed, ExitStatus: new(int)},
			{Path: "/usr/lib/greenboot/check/wanted.d/05_dns.sh", Kind: "wanted", Type: "script", Outcome: record.CheckFailed, ExitStatus: &one},
			{Path: "/etc/greenboot/check/required.d/10_failing_check.sh", Kind: "required", Type: "script", Outcome: record.CheckFailed, ExitStatus: &three,
				LastLines: []string{"connecting to app", "app.service is not running"}},
			{Path: "/etc/bootc/health/units.d/app.toml", Kind: "required", Type: "units", Outcome: record.CheckSkipped},
		},
		Assessment: &record.HealthAssessment{Action: "marked-bad", TriesLeft: &one},
	}
	want := `Script '05_dns.sh' FAILURE (exit code '1'). Continuing...
Script '10_failing_check.sh' FAILURE (exit code '3'). Continuing...
Boot Status is RED - Health Check FAILURE!
Failed check: /etc/greenboot/check/required.d/10_failing_check.sh (exit code '3') at 2026-12-01T10:20:30Z.
Deployment: default/3 (sha256:ab)
Last lines of its output:
    connecting to app
    app.service is not running
Tries left for this deployment: 1
`
	if got := MOTD(h); got != want {
		t.Errorf("login message:\n%s\nwant:\n%s", got, want)
	}
	root := t.TempDir()
	if err := WriteMOTD(root, InProgress); err != nil {
		t.Fatal(err)
	}
	if err := WriteMOTD(root, want); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "run/motd.d/boot-status"))
	if err != nil || string(data) != want {
		t.Errorf("%s = %q, %v", MOTDPath, data, err)
	}
}

// What greenboot.conf holds besides assignments is reported, and the checks run all the same.
func TestConfWarnings(t *testing.T) {
	root, trace, opts, _ := newRoot(t)
	write(t, root, "etc/greenboot/greenboot.conf", 0o644, "GREENBOOT_MAX_BOOT_ATTEMPTS=3\nlogger hello\nDISABLED_HEALTHCHECKS=(\"off.sh\")\n")
	write(t, root, "etc/greenboot/check/required.d/off.sh", 0o644, tracer+"exit 1\n")
	write(t, root, "etc/greenboot/check/required.d/on.sh", 0o644, tracer)
	p, h := assess(t, root, opts)
	if want := []string{"/etc/greenboot/greenboot.conf: line 2: not an assignment; statement ignored"}; !slices.Equal(p.Warnings, want) {
		t.Errorf("warnings %q, want %q", p.Warnings, want)
	}
	if h.Verdict != record.Green || len(traced(t, root, trace)) != 1 {
		t.Errorf("verdict %s, ran %q", h.Verdict, traced(t, root, trace))
	}
}
