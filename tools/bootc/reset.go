package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/imgref"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
)

// InstallResetCmd is `bootc install reset`, a factory reset: the image (the booted one unless
// --source-imgref names another) staged into a new stateroot, whose /etc starts from the image's
// and whose /var starts empty. The old stateroot stays, listed in the boot entries, until a
// later update drops it. The front runs it: it is an update into another stateroot, done with
// the update steps, not an install to a disk.
type InstallResetCmd struct {
	Experimental bool     `help:"Acknowledge that the command is experimental (required)." required:""`
	Stateroot    string   `help:"Stateroot to reset into (default: state-<year>-<serial>, the first unused)." placeholder:"NAME"`
	SourceImgref string   `name:"source-imgref" help:"Image to reset to, in containers-transports(5) syntax (default: the booted image)." placeholder:"REF"`
	TargetImgref string   `name:"target-imgref" help:"Image the reset system follows for updates." unsupported:"the reset system follows the image it is reset to; switch afterwards to follow another"`
	Karg         []string `help:"Kernel argument to add (repeatable)." sep:"none" placeholder:"KEY[=VALUE]"`
	NoRootKargs  bool     `name:"no-root-kargs" help:"Do not carry the booted system's root arguments (root=, rootflags=, rootfstype=, rw, ro) over."`
	Quiet        bool     `help:"Do not show progress."`
	Apply        bool     `help:"Reboot into the reset system once it is staged."`
	ProgressFD   int      `name:"progress-fd" hidden:"" default:"-1"`
}

// rootKargs are the arguments that find and mount the physical root: a reset keeps them, as the
// new stateroot lives on the same filesystem, and starts every other argument afresh.
var rootKargs = []string{"root", "rootflags", "rootfstype", "rw", "ro"}

// runInstallReset parses `bootc install reset`'s arguments and runs it.
func runInstallReset(top *CLI, e *env, args []string) error {
	c := &InstallResetCmd{}
	code := cli.Run("bootc install reset", "Factory reset: stage the image into a new stateroot with a fresh /etc and an empty /var.",
		c, args, e.stdout, e.stderr, func(ctx context.Context, k *kong.Context) error { return c.Run(top, e) })
	if code != 0 {
		return &cli.ExitError{Code: code, Err: fmt.Errorf("bootc install reset exited with status %d", code), Reported: true}
	}
	return nil
}

// Run stages the reset.
func (c *InstallResetCmd) Run(top *CLI, e *env) error {
	u, err := beginUpdate(top, e, "install reset", c.Quiet, c.ProgressFD)
	if err != nil {
		return err
	}
	defer u.end()
	st, err := status.Load(status.Options{Root: u.r, Cmdline: top.Cmdline})
	if err != nil {
		return err
	}
	if st.Booted == nil {
		return errors.New("no booted deployment to reset from")
	}
	stateroot := c.Stateroot
	if stateroot == "" {
		if stateroot, err = freeStateroot(u.r, time.Now()); err != nil {
			return err
		}
	} else if err := layout.CheckName("stateroot", stateroot); err != nil {
		return &cli.ExitError{Code: cli.ExitUsage, Err: fmt.Errorf("--stateroot: %w", err)}
	}
	if stateroot == st.Booted.Stateroot {
		return &cli.ExitError{Code: cli.ExitUsage, Err: fmt.Errorf("--stateroot %s is the booted one; a reset needs a new stateroot", stateroot)}
	}
	digest := st.Booted.Image.ManifestDigest
	if c.SourceImgref != "" {
		ref, err := imgref.ParseTransportString(c.SourceImgref)
		if err != nil {
			return &cli.ExitError{Code: cli.ExitUsage, Err: err}
		}
		f, err := u.fetch("--transport", string(ref.Transport), ref.Image)
		if err != nil {
			return err
		}
		digest = f.ManifestDigest
	}
	kargs, err := c.kargs(st.Booted.Kargs)
	if err != nil {
		return err
	}
	args := []string{"--image", digest, "--stateroot", stateroot}
	for _, k := range kargs {
		args = append(args, "--karg", k)
	}
	res := &record.StageResult{}
	if err := u.step("bootc-stage", res, args...); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Reset staged into stateroot %s: a fresh /etc and an empty /var on the next boot; stateroot %s stays until an update drops it.\n",
		stateroot, st.Booted.Stateroot)
	if c.Apply && res.Staged {
		return reboot()
	}
	return nil
}

// kargs are the arguments the reset system starts with, besides its image's kargs.d: the booted
// system's root arguments (unless --no-root-kargs), then --karg.
func (c *InstallResetCmd) kargs(booted string) ([]string, error) {
	var out []string
	if !c.NoRootKargs {
		cl, err := cmdline.Parse(booted)
		if err != nil {
			return nil, fmt.Errorf("reading the booted kernel arguments: %w", err)
		}
		for _, a := range cl.Args() {
			if slices.Contains(rootKargs, a.Key()) {
				out = append(out, a.String())
			}
		}
	}
	return append(out, c.Karg...), nil
}

// freeStateroot is the first state-<year>-<serial> with no deployments and no state.
func freeStateroot(r layout.Root, now time.Time) (string, error) {
	for n := 0; n < 1000; n++ {
		name := "state-" + strconv.Itoa(now.Year()) + "-" + strconv.Itoa(n)
		_, errD := os.Stat(r.Deploy(name))
		_, errS := os.Stat(r.State(name))
		if errors.Is(errD, os.ErrNotExist) && errors.Is(errS, os.ErrNotExist) {
			return name, nil
		}
	}
	return "", errors.New("no free stateroot name state-<year>-<serial> below 1000; name one with --stateroot")
}
