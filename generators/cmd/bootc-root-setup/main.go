// Command bootc-root-setup mounts the booted bootc deployment in the initramfs (`setup`) and
// re-applies its read-only mounts on the booted host (`remount`); see package rootsetup for the
// mount sequence. In the initramfs it is also a systemd generator (`generate`, or called by the
// name GeneratorName): when systemd-boot booted an entry on trial, a failed initramfs reboots
// instead of waiting in the emergency shell. It uses the standard library only and is built
// static for the initramfs.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gobootc.dev/generators/rootsetup"
	"gobootc.dev/lib/efivar"
	"gobootc.dev/lib/layout"
)

const usage = `usage: bootc-root-setup setup [--sysroot DIR] [--staging DIR] [--run-dir DIR] [--cmdline FILE]
       bootc-root-setup remount [--root DIR] [--sysroot DIR]
       bootc-root-setup generate [--root DIR] [--efivars DIR]
`

// GeneratorName is the name the initramfs calls the command by as a systemd generator (a link
// in its system-generators directory); it then runs `generate`. systemd passes its output
// directories, which stay empty: the generator writes no units.
const GeneratorName = "bootc-root-setup-generator"

func main() {
	args := os.Args[1:]
	var out, errOut io.Writer = os.Stdout, os.Stderr
	if filepath.Base(os.Args[0]) == GeneratorName {
		args = []string{"generate"}
		// Like systemd's own generators, log to the kernel log in the initramfs: it reaches
		// the console, and the journal once that runs.
		if _, err := os.Stat("/" + rootsetup.InitrdRelease); err == nil {
			if k, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0); err == nil {
				out, errOut = kmsg{k, 5}, kmsg{k, 3}
			}
		}
	}
	if err := run(args, out); err != nil {
		fmt.Fprintf(errOut, "bootc-root-setup: error: %v\n", err)
		if errors.Is(err, errSetup) {
			what := "choose another boot entry (the previous deployment) in the boot menu"
			if cmdline, _ := os.ReadFile("/proc/cmdline"); rootsetup.OnTrial("/", string(cmdline)) {
				what = "this boot is on trial: the machine restarts, and once the tries run out the boot loader boots the previous deployment"
			}
			fmt.Fprintln(errOut, "bootc-root-setup: the deployment cannot be booted; "+what)
		}
		os.Exit(1)
	}
}

var errSetup = errors.New("setting up the deployment root failed")

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("no subcommand\n%s", usage)
	}
	fset := flag.NewFlagSet("bootc-root-setup "+args[0], flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	sysroot := fset.String("sysroot", layout.DefaultSysroot, "where the physical root is mounted")
	switch args[0] {
	case "setup":
		staging := fset.String("staging", rootsetup.DefaultStaging, "empty directory outside the sysroot to assemble the deployment in")
		runDir := fset.String("run-dir", layout.DefaultRunDir, "directory that receives booted.json")
		cmdlinePath := fset.String("cmdline", "/proc/cmdline", "kernel command line to read "+layout.DeploymentKarg+"= from")
		if err := parse(fset, args[1:]); err != nil {
			return err
		}
		text, err := os.ReadFile(*cmdlinePath)
		if err != nil {
			return fmt.Errorf("reading the kernel command line: %w", err)
		}
		sr, id, err := rootsetup.DeploymentFromCmdline(string(text))
		if err != nil {
			return fmt.Errorf("%w: %w", errSetup, err)
		}
		fmt.Fprintf(out, "bootc-root-setup: setting up deployment %s\n", layout.DeploymentKargValue(sr, id))
		err = rootsetup.Setup(rootsetup.Kernel{}, rootsetup.Config{
			Sysroot: *sysroot, Staging: *staging, Run: *runDir, Stateroot: sr, ID: id, Log: prefixed{out},
		})
		if err != nil {
			return fmt.Errorf("%w: %w", errSetup, err)
		}
		return nil
	case "remount":
		root := fset.String("root", "/", "the booted deployment's root")
		if err := parse(fset, args[1:]); err != nil {
			return err
		}
		changed, err := rootsetup.Remount(rootsetup.Kernel{}, *root, *sysroot)
		for _, p := range changed {
			fmt.Fprintf(out, "bootc-root-setup: made %s read-only again\n", p)
		}
		return err
	case "generate":
		root := fset.String("root", "/", "the initramfs's root, which receives "+rootsetup.TrialCmdline)
		efivars := fset.String("efivars", efivar.DefaultDir, "where the EFI variables are (efivarfs)")
		if err := parse(fset, args[1:]); err != nil {
			return err
		}
		entry, armed, err := rootsetup.ArmTrialReboot(*root, *efivars)
		if err != nil {
			return fmt.Errorf("making a failed boot on trial reboot: %w", err)
		}
		if armed {
			if entry == "" {
				entry = "a counted entry"
			}
			fmt.Fprintf(out, "bootc-root-setup: systemd-boot booted %s on trial: if this boot fails in the initramfs, it reboots (%s) instead of starting the emergency shell\n",
				entry, rootsetup.TrialArgs)
		}
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(out, usage)
		return nil
	default:
		return fmt.Errorf("unknown subcommand %q\n%s", args[0], usage)
	}
}

func parse(fset *flag.FlagSet, args []string) error {
	if err := fset.Parse(args); err != nil {
		return fmt.Errorf("%s: %w\n%s", fset.Name(), err, usage)
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q\n%s", fset.Name(), fset.Arg(0), usage)
	}
	return nil
}

// kmsg writes each line as one kernel log record of the given priority (5 notice, 3 error).
type kmsg struct {
	w        io.Writer
	priority int
}

func (k kmsg) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if _, err := fmt.Fprintf(k.w, "<%d>%s\n", k.priority, line); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// prefixed writes each progress line with the command's name, so the console says who spoke.
type prefixed struct{ w io.Writer }

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(p.w, "bootc-root-setup: %s", b); err != nil {
		return 0, err
	}
	return len(b), nil
}
