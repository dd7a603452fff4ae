// Command demo runs the sample image's lifecycle in a virtual machine with a narrated console:
// install from inside the image's container, boot, upgrade, reboot, rollback, power cuts, and
// bad updates that heal by themselves. It is what `make demo` runs; the VM test TestLifecycle
// runs the same steps.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/spectest"
	"gobootc.dev/tests/integration/lifecycle"
)

func main() {
	repo := flag.String("repo", "", "the checkout (default: found above the working directory)")
	bootloader := flag.String("bootloader", "grub", "boot loader to install: grub (BIOS) or systemd (UEFI)")
	powerCut := flag.Bool("power-cut", true, "also cut the power during finalize at a few steps (a boot after each) and update again")
	badUpdates := flag.Bool("bad-updates", true, "also apply two bad updates (a failing health check, a kernel panic) that must fall back by themselves")
	artifacts := flag.String("artifacts", "", "where the console logs go (default: $BOOTC_TEST_ARTIFACTS/demo, else a new directory under /var/tmp)")
	flag.Parse()
	if err := run(*repo, *bootloader, *artifacts, *powerCut, *badUpdates); err != nil {
		fmt.Fprintf(os.Stderr, "demo: error: %v\n", err)
		os.Exit(1)
	}
}

func run(repo, bootloader, artifacts string, powerCut, badUpdates bool) error {
	if os.Geteuid() != 0 {
		return errors.New("must run as root (podman, loop devices, QEMU)")
	}
	if repo == "" {
		var err error
		if repo, err = findRepo(); err != nil {
			return err
		}
	}
	if artifacts == "" {
		if base := os.Getenv("BOOTC_TEST_ARTIFACTS"); base != "" {
			artifacts = filepath.Join(base, "demo")
		} else {
			artifacts = filepath.Join("/var/tmp", "bootc-demo-"+time.Now().Format("20060102-150405"))
		}
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("/var/tmp", "bootc-demo-work-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n := newNarrator(os.Stdout)
	defer n.Close()
	start := time.Now()
	n.intro(bootloader, powerCut, badUpdates)

	validate := spectest.ValidateHost
	if _, err := spectest.Dir(); err != nil {
		n.Logf("the published status schema is not beside the checkout (%v): status documents are parsed but not validated", err)
		validate = nil
	}
	images := lifecycle.LifecycleImages
	if badUpdates {
		images = lifecycle.AllImages
	}
	env, err := lifecycle.PrepareImages(ctx, repo, work, images, n)
	if err != nil {
		return err
	}
	defer env.Close()
	rep, err := env.Run(ctx, lifecycle.Options{
		Bootloader: bootloader, Artifacts: artifacts, Work: work, PowerCut: powerCut, BadUpdates: badUpdates,
		ValidateStatus: validate,
	})
	n.summary(rep, env, artifacts, time.Since(start))
	if errors.Is(err, lifecycle.ErrChecksFailed) {
		return fmt.Errorf("%d checks failed (see FAILED above); console logs in %s", n.failures, artifacts)
	}
	if err != nil {
		return fmt.Errorf("%w\nconsole logs in %s", err, artifacts)
	}
	return nil
}

// findRepo walks up from the working directory to the checkout holding images/build.sh.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "images", "build.sh")); err == nil {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no images/build.sh above %s; give -repo", dir)
		}
	}
}

// narrator prints the run for people: bold step titles and coloured failures on a terminal,
// plain text otherwise. On a terminal, a wait with nothing printed for a while (the image build,
// a boot under TCG, an upgrade in the guest) shows a progress line, rewritten in place: a
// spinner, the seconds since the last output, and the last line of the guest's console once a
// machine runs.
type narrator struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	step     int
	failures int

	title   string    // the current step's title, shown before a machine runs
	console string    // the running machine's console log
	quiet   time.Time // when something was last printed
	shown   bool      // a progress line is on the screen
	width   int       // of the terminal
	done    chan struct{}
	stopped chan struct{}
}

// progressAfter is how long a silence lasts before the progress line appears.
const progressAfter = time.Second

func newNarrator(f *os.File) *narrator {
	n := &narrator{w: f, quiet: time.Now(), width: 100}
	if _, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
		n.tty = true
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Col > 20 {
			n.width = int(ws.Col)
		}
		n.startProgress()
	}
	return n
}

// startProgress starts drawing the progress line during silences, until Close.
func (n *narrator) startProgress() {
	n.done, n.stopped = make(chan struct{}), make(chan struct{})
	go n.progress()
}

// Close stops the progress line and clears it.
func (n *narrator) Close() {
	if n.done == nil {
		return
	}
	close(n.done)
	<-n.stopped
	n.mu.Lock()
	defer n.mu.Unlock()
	n.clear()
}

// progress redraws the progress line while nothing else is printed.
func (n *narrator) progress() {
	defer close(n.stopped)
	frames := []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-n.done:
			return
		case <-tick.C:
		}
		n.mu.Lock()
		if waited := time.Since(n.quiet); waited >= progressAfter {
			what := n.title
			if n.console != "" {
				what = "console: " + lastLine(n.console)
			}
			line := fmt.Sprintf("   %c %3ds  %s", frames[i%len(frames)], int(waited.Seconds()), what)
			if r := []rune(line); len(r) > n.width-1 {
				line = string(r[:n.width-1])
			}
			fmt.Fprint(n.w, "\r\033[K"+n.style("2", line))
			n.shown = true
		}
		n.mu.Unlock()
	}
}

// clear removes the progress line before other output; called with mu held.
func (n *narrator) clear() {
	if n.shown {
		fmt.Fprint(n.w, "\r\033[K")
		n.shown = false
	}
}

// print writes text (whole lines), clearing the progress line first.
func (n *narrator) print(text string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.clear()
	fmt.Fprint(n.w, text)
	n.quiet = time.Now()
}

// Console follows a machine's console log in the progress line (lifecycle.ConsoleWatcher).
func (n *narrator) Console(path string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.console = path
}

// lastLine returns the last non-empty line of a console log, without escape sequences and
// control characters (the console draws with them).
func lastLine(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	buf := make([]byte, 4096)
	if fi, err := f.Stat(); err == nil && fi.Size() > int64(len(buf)) {
		f.Seek(fi.Size()-int64(len(buf)), io.SeekStart)
	}
	k, _ := io.ReadFull(f, buf)
	lines := strings.FieldsFunc(string(buf[:k]), func(r rune) bool { return r == '\n' || r == '\r' })
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(printable(lines[i])); l != "" {
			return l
		}
	}
	return ""
}

// ansi matches the escape sequences a console carries (CSI and two-character ones).
var ansi = regexp.MustCompile(`\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])`)

func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, ansi.ReplaceAllString(s, ""))
}

func (n *narrator) style(code, s string) string {
	if !n.tty {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

func (n *narrator) intro(bootloader string, powerCut, badUpdates bool) {
	// install, the upgrade's reboot and the rollback's; then a boot after each power cut and
	// one after the last update; then the tries and the fallback boot of each bad update.
	total := 3
	var parts []string
	if cuts := len(lifecycle.DefaultCuts[bootloader]); powerCut && cuts > 0 {
		total += cuts + 1
		parts = append(parts, fmt.Sprintf("%d after cutting the power during finalize", cuts))
	}
	if bad := len(lifecycle.BadImages); badUpdates && bad > 0 {
		heal := bad * (lifecycle.SampleTries + 1)
		total += heal
		parts = append(parts, fmt.Sprintf("%d while %d bad updates heal by themselves", heal, bad))
	}
	boots := fmt.Sprintf("%d boots", total)
	if len(parts) > 0 {
		boots += ", " + strings.Join(parts, " and ")
	}
	title, built := "bootc: a disk installed from an OCI image boots, upgrades and rolls back", "v1 and v2"
	if badUpdates {
		title = "bootc: a disk installed from an OCI image boots, upgrades, rolls back and heals bad updates"
		built = "v1, v2 and the bad updates v6 (a failing health check) and v7 (a kernel panic)"
	}
	n.print(n.style("1", title) + "\n" +
		wrap("The sample image (Debian trixie with the bootc tools) is built as "+built+", published on a "+
			"local registry, installed to a disk image with the "+bootloader+" boot loader from inside its own "+
			"container, and run in a QEMU virtual machine (software emulation, so each boot takes about a "+
			"minute): "+boots+". Every command in the guest runs through the QEMU guest agent.", 96, "") + "\n")
}

func (n *narrator) Step(title, about string) {
	n.mu.Lock()
	n.step++
	n.title = title
	step := n.step
	n.mu.Unlock()
	n.print(fmt.Sprintf("\n%s\n%s\n", n.style("1", fmt.Sprintf("== %d. %s", step, title)), wrap(about, 96, "   ")))
}

func (n *narrator) Show(label, text string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n   %s\n", n.style("36", "$ "+label))
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(&b, "     %s\n", line)
	}
	n.print(b.String())
}

func (n *narrator) Logf(format string, args ...any) {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n") {
		fmt.Fprintf(&b, "   %s\n", n.style("2", "· "+line))
	}
	n.print(b.String())
}

func (n *narrator) Errorf(format string, args ...any) {
	n.mu.Lock()
	n.failures++
	n.mu.Unlock()
	n.print(fmt.Sprintf("   %s\n", n.style("1;31", "FAILED: "+fmt.Sprintf(format, args...))))
}

// summary repeats the measurements the steps reported, rounded the same way.
func (n *narrator) summary(rep *lifecycle.Report, env *lifecycle.Env, artifacts string, took time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n", n.style("1", "== Summary"))
	if rep != nil {
		for i, bt := range rep.Boots {
			fmt.Fprintf(&b, "   boot %d: %-45s %5s to the guest agent\n", i+1, bt.What, seconds(bt.Took))
		}
		if env != nil {
			fmt.Fprintf(&b, "   image build: %s\n", seconds(env.Build))
		}
		for _, t := range rep.Timings {
			fmt.Fprintf(&b, "   %s: %s\n", t.Step, seconds(t.Took))
		}
		if rep.PowerCut != "" {
			fmt.Fprintf(&b, "   power cut: %s\n", rep.PowerCut)
		}
		for _, rc := range rep.Recoveries {
			fmt.Fprintf(&b, "   bad update %s (%s): healed in %d boots (target %d: %d tries + 1) and %s, from upgrade --apply to status explaining it\n",
				rc.Image, rc.Failure, rc.Boots, rc.Target, rc.Tries, seconds(rc.Took))
		}
	}
	fmt.Fprintf(&b, "   total: %s; console log of every boot in %s\n", seconds(took), artifacts)
	n.mu.Lock()
	failures := n.failures
	n.mu.Unlock()
	if failures == 0 && rep != nil {
		fmt.Fprintf(&b, "   %s\n", n.style("1;32", "every check passed"))
	}
	n.print(b.String())
}

// seconds formats a duration as the steps' own messages do (lifecycle rounds to the second).
func seconds(d time.Duration) string { return d.Round(time.Second).String() }

// wrap fills text to width columns, each line starting with indent.
func wrap(text string, width int, indent string) string {
	var b strings.Builder
	line := indent
	for _, w := range strings.Fields(text) {
		if len(line) > len(indent) && len(line)+1+len(w) > width {
			b.WriteString(line + "\n")
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += w
	}
	b.WriteString(line)
	return b.String()
}
