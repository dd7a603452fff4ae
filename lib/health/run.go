package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/record"
)

// Defaults of Options.
const (
	// DefaultTimeout bounds each check. It is long on purpose: real checks wait for their
	// services (MicroShift's wait up to 15 minutes on a third try), and a check killed early
	// rolls back a good update. It exists at all because greenboot has none, and a check that
	// hangs there blocks the rollback for good.
	DefaultTimeout = 20 * time.Minute
	// DefaultGrace is how long a check's processes have between SIGTERM and SIGKILL.
	DefaultGrace = 10 * time.Second
	// DefaultLines is how many of a check's last output lines the record keeps.
	DefaultLines = 10
	// maxLine bounds one kept line; the journal gets the whole line.
	maxLine = 1000
)

// Log receives what a run reports: its own messages, in greenboot's words, and each line the
// checks write, under the check's name. JournalLog sends both to the journal.
type Log interface {
	Message(id journal.ID, pri journal.Priority, text string, fields map[string]string)
	Output(name string, pri journal.Priority, line string, fields map[string]string)
}

// Options tune a run; the zero value is the defaults.
type Options struct {
	// Timeout bounds each check and hook; a units list may set its own.
	Timeout time.Duration
	// Grace is the time between SIGTERM and SIGKILL for a check that timed out.
	Grace time.Duration
	// Poll is how often a units list asks systemd again (default 2s).
	Poll time.Duration
	// Lines is how many last output lines of a check that did not pass are kept.
	Lines   int
	Systemd Systemd
	Log     Log
	// Env is the environment of the checks (default this process's): greenboot passes its
	// own, and checks read greenboot.conf themselves.
	Env []string
}

type runner struct {
	plan    *Plan
	timeout time.Duration
	grace   time.Duration
	poll    time.Duration
	lines   int
	systemd Systemd
	log     Log
	env     []string
}

func (p *Plan) runner(opts Options) *runner {
	r := &runner{plan: p, timeout: opts.Timeout, grace: opts.Grace, poll: opts.Poll, lines: opts.Lines,
		systemd: opts.Systemd, log: opts.Log, env: opts.Env}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.grace <= 0 {
		r.grace = DefaultGrace
	}
	if r.poll <= 0 {
		r.poll = 2 * time.Second
	}
	if r.lines <= 0 {
		r.lines = DefaultLines
	}
	if r.systemd == nil {
		r.systemd = Systemctl{}
	}
	if r.log == nil {
		r.log = JournalLog{Out: os.Stdout, Err: os.Stderr}
	}
	if r.env == nil {
		r.env = os.Environ()
	}
	return r
}

// Assess runs the checks in order and returns the verdict with every check's outcome. The first
// required check that fails makes the boot RED and ends the run: the checks after it are skipped,
// as greenboot does since 0.15.8, so a rollback is not delayed by checks that cannot change the
// verdict. Wanted checks' failures are reported only. An error means no verdict: the run was
// stopped (ctx) before it finished.
func (p *Plan) Assess(ctx context.Context, opts Options) (*record.Health, error) {
	r := p.runner(opts)
	h := &record.Health{Version: record.FormatVersion, Verdict: record.Green, Started: time.Now().UTC(), Checks: []record.HealthCheck{}}
	var lastKind Kind
	for _, c := range p.Checks {
		if ctx.Err() != nil {
			return nil, errCanceled
		}
		if h.Failed != "" {
			h.Checks = append(h.Checks, r.notRun(c, record.CheckSkipped, "'%s' was skipped due to a previous failure"))
			continue
		}
		if c.Disabled {
			h.Checks = append(h.Checks, r.notRun(c, record.CheckDisabled, "'%s' was skipped, as specified in config"))
			continue
		}
		if c.Kind != lastKind {
			lastKind = c.Kind
			title := map[Kind]string{Required: "Required", Wanted: "Wanted"}[c.Kind]
			r.log.Message(journal.HealthCheck, journal.Info, "Running "+title+" Health Check Scripts...", nil)
		}
		res, err := r.run(ctx, c, nil)
		if err != nil {
			return nil, err
		}
		h.Checks = append(h.Checks, res)
		if res.Outcome != record.CheckPassed && c.Kind == Required {
			h.Verdict, h.Failed = record.Red, c.Path
		}
	}
	h.Finished = time.Now().UTC()
	if h.Verdict == record.Green {
		r.log.Message(journal.HealthGreen, journal.Notice, "Boot Status is GREEN - Health Check SUCCESS", nil)
	} else {
		r.log.Message(journal.HealthRed, journal.Emerg, "Boot Status is RED - Health Check FAILURE!",
			map[string]string{"BOOTC_HEALTH_CHECK": h.Failed})
	}
	return h, nil
}

// RunHooks runs the green.d hooks after a GREEN verdict or the red.d ones after a RED, in
// greenboot's relaxed mode: each runs whatever the others did, and their failures are reported
// but change nothing. env is added to each hook's environment (the verdict, where its record is).
func (p *Plan) RunHooks(ctx context.Context, verdict record.Verdict, env []string, opts Options) ([]record.HealthCheck, error) {
	hooks := p.Green
	if verdict != record.Green {
		hooks = p.Red
	}
	r := p.runner(opts)
	var out []record.HealthCheck
	for _, c := range hooks {
		if c.Disabled {
			out = append(out, r.notRun(c, record.CheckDisabled, "'%s' was skipped, as specified in config"))
			continue
		}
		res, err := r.run(ctx, c, env)
		if err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

func (r *runner) notRun(c Check, outcome record.CheckOutcome, format string) record.HealthCheck {
	r.log.Message(journal.HealthCheck, journal.Notice, fmt.Sprintf(format, c.Name()), fields(c))
	return record.HealthCheck{Path: c.Path, Kind: string(c.Kind), Type: string(c.Type), Outcome: outcome}
}

func fields(c Check) map[string]string {
	return map[string]string{"BOOTC_HEALTH_CHECK": c.Path, "BOOTC_HEALTH_KIND": string(c.Kind)}
}

// run runs one check or hook and reports how it ended. The error is for a run stopped from
// outside only; a check that cannot even start has failed.
func (r *runner) run(ctx context.Context, c Check, extraEnv []string) (record.HealthCheck, error) {
	res := record.HealthCheck{Path: c.Path, Kind: string(c.Kind), Type: string(c.Type)}
	start := time.Now()
	out := newLineLog(r.lines, func(pri journal.Priority, line string) {
		r.log.Output(c.Name(), pri, line, fields(c))
	})
	var timedOut bool
	var err error
	exited0 := true // a program's exit status, for the other types: no program
	switch {
	case c.Invalid != nil:
		err = c.Invalid
	case c.Type == Units:
		timeout := r.timeout
		if c.UnitTimeout > 0 {
			timeout = c.UnitTimeout
		}
		var lines []string
		lines, timedOut, err = r.waitUnits(ctx, c, timeout)
		for _, l := range lines {
			out.line(l)
		}
		if timedOut {
			res.TimedOutAfter = timeout.String()
		}
	default:
		argv := []string{c.File}
		if c.Type == Script {
			argv = []string{"bash", c.File}
		}
		timedOut, err = r.exec(ctx, argv, append(r.env[:len(r.env):len(r.env)], extraEnv...), out, &res)
		if timedOut {
			res.TimedOutAfter = r.timeout.String()
		}
		exited0 = res.ExitStatus != nil && *res.ExitStatus == 0
	}
	out.flush()
	res.DurationMS = time.Since(start).Milliseconds()
	if ctx.Err() != nil {
		return res, fmt.Errorf("%w (during %s)", errCanceled, c.Path)
	}
	switch {
	case timedOut:
		res.Outcome = record.CheckTimedOut
	case err != nil || !exited0:
		res.Outcome = record.CheckFailed
	default:
		res.Outcome = record.CheckPassed
	}
	if err != nil {
		res.Error = err.Error()
	}
	if res.Outcome == record.CheckPassed {
		r.log.Message(journal.HealthCheck, journal.Info, fmt.Sprintf("%s '%s' SUCCESS", noun(res), c.Name()), fields(c))
		return res, nil
	}
	res.LastLines = out.last()
	pri := journal.Crit
	switch c.Kind {
	case Required:
		pri = journal.Emerg
	case Green, Red:
		pri = journal.Err
	}
	r.log.Message(journal.HealthCheck, pri, Failure(res), fields(c))
	return res, nil
}

// Failure is the message a check that did not pass gets, in greenboot's words.
func Failure(c record.HealthCheck) string {
	return fmt.Sprintf("%s '%s' FAILURE (%s). Continuing...", noun(c), path.Base(c.Path), Reason(c))
}

// noun is what the messages call a check: greenboot's speak of scripts, and executables are
// scripts to its users.
func noun(c record.HealthCheck) string {
	if c.Type == string(Units) {
		return "Units"
	}
	return "Script"
}

// Reason says why a check did not pass, in the words of greenboot's messages where it has them.
func Reason(c record.HealthCheck) string {
	switch {
	case c.Error != "":
		return c.Error
	case c.TimedOutAfter != "":
		return "timed out after " + c.TimedOutAfter + ", killed"
	case c.Signal != "":
		return "killed by " + c.Signal
	case c.ExitStatus != nil:
		return fmt.Sprintf("exit code '%d'", *c.ExitStatus)
	}
	return string(c.Outcome)
}

// exec runs argv in a process group of its own, so that a timeout kills the check with every
// process it started, and fills in how it ended. stdin is /dev/null; stdout and stderr go, in
// the order written, to out.
func (r *runner) exec(ctx context.Context, argv, env []string, out *lineLog, res *record.HealthCheck) (timedOut bool, err error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = r.plan.Root
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A check may leave a background process holding its output open, as greenboot allows;
	// its exit, not that process, ends the check.
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
	select {
	case err = <-done:
	case <-timer.C:
		timedOut = true
		err = r.killGroup(cmd.Process.Pid, done)
	case <-ctx.Done():
		err = r.killGroup(cmd.Process.Pid, done)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = nil
	}
	if ps := cmd.ProcessState; ps != nil {
		ws, _ := ps.Sys().(syscall.WaitStatus)
		switch {
		case ws.Signaled():
			res.Signal = unix.SignalName(ws.Signal())
		case ps.Exited():
			status := ps.ExitCode()
			res.ExitStatus = &status
		}
	}
	return timedOut, err
}

// killGroup ends the process group pgid: SIGTERM, then SIGKILL for whatever is left after the
// grace period. It returns the main process's Wait result.
func (r *runner) killGroup(pgid int, done <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	grace := time.NewTimer(r.grace)
	defer grace.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var err error
	waited := false
	for {
		select {
		case err = <-done:
			waited = true
			continue
		case <-tick.C:
			// Once the main process is reaped, an empty group means nothing is left to kill.
			if waited && syscall.Kill(-pgid, 0) == syscall.ESRCH {
				return err
			}
			continue
		case <-grace.C:
		}
		break
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	if !waited {
		err = <-done
	}
	return err
}

// lineLog splits a check's output into lines, hands each to emit and keeps the last ones. A
// line may start with a syslog priority, "<3>", which sets its priority as systemd-cat does.
type lineLog struct {
	partial []byte
	ring    []string
	keep    int
	emit    func(journal.Priority, string)
}

func newLineLog(keep int, emit func(journal.Priority, string)) *lineLog {
	return &lineLog{keep: keep, emit: emit}
}

// Write is called by one goroutine at a time: os/exec copies stdout and stderr, being the same
// writer, through one pipe.
func (l *lineLog) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			l.partial = append(l.partial, b...)
			// journald cuts lines at this length as well.
			if len(l.partial) >= 64<<10 {
				l.line(string(l.partial))
				l.partial = l.partial[:0]
			}
			break
		}
		l.partial = append(l.partial, b[:i]...)
		l.line(string(l.partial))
		l.partial = l.partial[:0]
		b = b[i+1:]
	}
	return n, nil
}

// flush passes on a last line without a newline.
func (l *lineLog) flush() {
	if len(l.partial) > 0 {
		l.line(string(l.partial))
		l.partial = nil
	}
}

func (l *lineLog) line(s string) {
	s = strings.TrimSuffix(s, "\r")
	pri := journal.Info
	if len(s) >= 3 && s[0] == '<' && s[1] >= '0' && s[1] <= '7' && s[2] == '>' {
		pri, s = journal.Priority(s[1]-'0'), s[3:]
	}
	l.emit(pri, s)
	if len(s) > maxLine {
		s = strings.ToValidUTF8(s[:maxLine], "") + "…"
	}
	l.ring = append(l.ring, s)
	if len(l.ring) > l.keep {
		l.ring = l.ring[len(l.ring)-l.keep:]
	}
}

func (l *lineLog) last() []string { return l.ring }

// errCanceled marks a run stopped from outside (the unit stopped, Ctrl-C): there is no verdict.
var errCanceled = errors.New("health checks stopped before they finished")
