// Command demo runs the sample image's lifecycle in a virtual machine with a narrated console:
// install from inside the image's container, boot, upgrade, reboot, rollback. It is what
// `make demo` runs; the VM test TestLifecycle runs the same steps.
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
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/spectest"
	"gobootc.dev/tests/integration/lifecycle"
)

func main() {
	repo := flag.String("repo", "", "the checkout (default: found above the working directory)")
	bootloader := flag.String("bootloader", "grub", "boot loader to install: grub (BIOS) or systemd (UEFI)")
	powerCut := flag.Bool("power-cut", true, "also cut the power during finalize and update again (two more boots)")
	artifacts := flag.String("artifacts", "", "where the console logs go (default: $BOOTC_TEST_ARTIFACTS/demo, else a new directory under /var/tmp)")
	flag.Parse()
	if err := run(*repo, *bootloader, *artifacts, *powerCut); err != nil {
		fmt.Fprintf(os.Stderr, "demo: error: %v\n", err)
		os.Exit(1)
	}
}

func run(repo, bootloader, artifacts string, powerCut bool) error {
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
	start := time.Now()
	n.intro(bootloader, powerCut)

	validate := spectest.ValidateHost
	if _, err := spectest.Dir(); err != nil {
		n.Logf("the published status schema is not beside the checkout (%v): status documents are parsed but not validated", err)
		validate = nil
	}
	env, err := lifecycle.Prepare(ctx, repo, work, n)
	if err != nil {
		return err
	}
	defer env.Close()
	rep, err := env.Run(ctx, lifecycle.Options{
		Bootloader: bootloader, Artifacts: artifacts, Work: work, PowerCut: powerCut, ValidateStatus: validate,
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
// plain text otherwise.
type narrator struct {
	w        io.Writer
	tty      bool
	step     int
	failures int
}

func newNarrator(f *os.File) *narrator {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return &narrator{w: f, tty: err == nil}
}

func (n *narrator) style(code, s string) string {
	if !n.tty {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

func (n *narrator) intro(bootloader string, powerCut bool) {
	boots := "three boots"
	if powerCut {
		boots = "five boots, one of them cut off during finalize"
	}
	fmt.Fprintln(n.w, n.style("1", "bootc: a disk installed from an OCI image boots, upgrades and rolls back"))
	fmt.Fprintln(n.w, wrap("The sample image (Debian trixie with the bootc tools) is built as v1 and v2, published on a "+
		"local registry, installed to a disk image with the "+bootloader+" boot loader from inside its own "+
		"container, and run in a QEMU virtual machine (software emulation, so each boot takes about a "+
		"minute): "+boots+". Every command in the guest runs through the QEMU guest agent.", 96, ""))
}

func (n *narrator) Step(title, about string) {
	n.step++
	fmt.Fprintf(n.w, "\n%s\n", n.style("1", fmt.Sprintf("== %d. %s", n.step, title)))
	fmt.Fprintln(n.w, wrap(about, 96, "   "))
}

func (n *narrator) Show(label, text string) {
	fmt.Fprintf(n.w, "\n   %s\n", n.style("36", "$ "+label))
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(n.w, "     %s\n", line)
	}
}

func (n *narrator) Logf(format string, args ...any) {
	for _, line := range strings.Split(strings.TrimRight(fmt.Sprintf(format, args...), "\n"), "\n") {
		fmt.Fprintf(n.w, "   %s\n", n.style("2", "· "+line))
	}
}

func (n *narrator) Errorf(format string, args ...any) {
	n.failures++
	fmt.Fprintf(n.w, "   %s\n", n.style("1;31", "FAILED: "+fmt.Sprintf(format, args...)))
}

func (n *narrator) summary(rep *lifecycle.Report, env *lifecycle.Env, artifacts string, took time.Duration) {
	fmt.Fprintf(n.w, "\n%s\n", n.style("1", "== Summary"))
	if rep != nil {
		for i, b := range rep.Boots {
			fmt.Fprintf(n.w, "   boot %d: %-45s %4ds to the guest agent\n", i+1, b.What, int(b.Took.Seconds()))
		}
		fmt.Fprintf(n.w, "   image build: %ds\n", int(env.Build.Seconds()))
		for _, t := range rep.Timings {
			fmt.Fprintf(n.w, "   %s: %ds\n", t.Step, int(t.Took.Seconds()))
		}
		if rep.PowerCut != "" {
			fmt.Fprintf(n.w, "   power cut: %s\n", rep.PowerCut)
		}
	}
	fmt.Fprintf(n.w, "   total: %s; console log of every boot in %s\n", took.Round(time.Second), artifacts)
	if n.failures == 0 && rep != nil {
		fmt.Fprintf(n.w, "   %s\n", n.style("1;32", "every check passed"))
	}
}

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
