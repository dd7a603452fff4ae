package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/imgref"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/mountns"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
)

// update is one fetch-and-stage run: the front holds the writer lock for the whole of it and
// hands it to each step tool, so no other writer slips in between fetch and stage.
type update struct {
	top   *CLI
	e     *env
	r     layout.Root
	lock  *lock.Lock
	tmp   string
	quiet bool
	// progressFD is the caller's --progress-fd, passed on to the step tools.
	progressFD int
	// verb is what the user typed ("upgrade"); the step tools report under it.
	verb string
}

func beginUpdate(top *CLI, e *env, verb string, quiet bool, progressFD int) (*update, error) {
	r, err := top.managedRoot()
	if err != nil {
		return nil, err
	}
	if err := mountns.MakeWritable(r.Phys, r.Boot); err != nil {
		return nil, err
	}
	l, err := lock.Acquire(context.Background(), r.Lock(), lock.Options{Operation: verb, Wait: time.Hour,
		Notify: func(msg string) { fmt.Fprintln(e.stderr, msg) }})
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "bootc-"+verb+"-")
	if err != nil {
		l.Release()
		return nil, err
	}
	return &update{top: top, e: e, r: r, lock: l, tmp: tmp, quiet: quiet, progressFD: progressFD, verb: verb}, nil
}

func (u *update) end() {
	os.RemoveAll(u.tmp)
	u.lock.Release()
}

// step runs a step tool on the front's root with the lock handed down and decodes its --result
// into res.
func (u *update) step(tool string, res any, args ...string) error {
	resultFile := filepath.Join(u.tmp, tool+".json")
	args = append([]string{"--sysroot", u.r.Phys, "--run-dir", u.r.Run, "--cmdline", u.top.Cmdline}, args...)
	args = append(args, "--result", resultFile)
	if u.progressFD > 0 && tool == "bootc-fetch" {
		args = append(args, "--progress-fd", "3") // the first extra descriptor
	}
	cmd, err := cli.StepCommand(context.Background(), tool, args...)
	if err != nil {
		return err
	}
	cmd.Env = cli.DisplayEnv(cmd.Env, "bootc "+u.verb)
	cmd.Stdout, cmd.Stderr = u.e.stdout, u.e.stderr
	if u.progressFD > 0 && tool == "bootc-fetch" {
		cmd.ExtraFiles = []*os.File{os.NewFile(uintptr(u.progressFD), "progress")}
	}
	if err := cli.RunStep(cmd, u.lock); err != nil {
		return err
	}
	if res == nil {
		return nil
	}
	return record.ReadResult(tool, resultFile, res)
}

// fetch runs bootc-fetch with args, adding --quiet when asked.
func (u *update) fetch(args ...string) (*record.FetchResult, error) {
	if u.quiet {
		args = append(args, "--quiet")
	}
	res := &record.FetchResult{}
	return res, u.step("bootc-fetch", res, args...)
}

// stage runs bootc-stage for a fetched manifest digest. An image that failed to boot here
// before is not staged without allowFailed; bootc-stage says so on the output, and the result
// has nothing staged, so --apply does not reboot.
func (u *update) stage(digest string, downloadOnly, allowFailed bool) (*record.StageResult, error) {
	args := []string{"--image", digest}
	if downloadOnly {
		args = append(args, "--download-only")
	}
	if allowFailed {
		args = append(args, "--allow-failed")
	}
	res := &record.StageResult{}
	return res, u.step("bootc-stage", res, args...)
}

// noteFailed tells, after an update check, that the update is an image that failed to boot
// here: upgrade will not stage it without --allow-failed.
func (u *update) noteFailed(digest string) error {
	stateroot, _, err := status.BootedID(u.r, u.top.Cmdline)
	if errors.Is(err, record.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	fi, err := record.LookupFailedImage(u.r, stateroot, digest)
	if err != nil || fi == nil {
		return err
	}
	fmt.Fprintf(u.e.stdout, "Note: this image %s. It is not staged without --allow-failed.\n", fi.Summary())
	return nil
}

// Run is `bootc upgrade`: fetch the tracked image (or just check it), stage it, and with --apply
// reboot into it.
func (c *UpgradeCmd) Run(top *CLI, e *env) error {
	u, err := beginUpdate(top, e, "upgrade", c.Quiet, c.ProgressFD)
	if err != nil {
		return err
	}
	defer u.end()
	if c.Check {
		args := []string{"--check"}
		if c.Tag != "" {
			args = append(args, "--tag", c.Tag)
		}
		f, err := u.fetch(args...)
		if err != nil || !f.Changed {
			return err
		}
		return u.noteFailed(f.ManifestDigest)
	}
	staged, err := record.ReadStaged(u.r)
	if err != nil && !errors.Is(err, record.ErrNotFound) {
		return err
	}
	if c.FromDownloaded {
		if staged == nil {
			return fmt.Errorf("--from-downloaded: no staged deployment")
		}
		d, err := record.ReadDeployment(u.r, staged.Stateroot, staged.ID)
		if err != nil {
			return err
		}
		if _, err := u.stage(d.Image.ManifestDigest, false, c.AllowFailed); err != nil {
			return err
		}
		return c.applyIfAsked(true)
	}
	args := []string{}
	if c.Tag != "" {
		args = append(args, "--tag", c.Tag)
	}
	f, err := u.fetch(args...)
	if err != nil {
		return err
	}
	if !f.Changed && !f.AlreadyStaged {
		fmt.Fprintln(e.stdout, "No update available.")
		return nil
	}
	s, err := u.stage(f.ManifestDigest, c.DownloadOnly, c.AllowFailed)
	if err != nil {
		return err
	}
	return c.applyIfAsked(s.Staged || s.Reason == record.AlreadyStaged)
}

func (c *UpgradeCmd) applyIfAsked(staged bool) error {
	if c.Apply && staged {
		return reboot()
	}
	return nil
}

// Run is `bootc switch`: track another image from now on, fetching and staging it.
func (c *SwitchCmd) Run(top *CLI, e *env) error {
	// A malformed target is reported before anything else happens, as a bad command line.
	ref, err := imgref.Parse(c.Transport, c.Target)
	if err != nil {
		return &cli.ExitError{Code: cli.ExitUsage, Err: err}
	}
	u, err := beginUpdate(top, e, "switch", c.Quiet, c.ProgressFD)
	if err != nil {
		return err
	}
	defer u.end()
	args := []string{"--transport", string(ref.Transport), ref.Image}
	if c.EnforceContainerSigpolicy {
		args = append(args, "--enforce-container-sigpolicy")
	}
	f, err := u.fetch(args...)
	if err != nil {
		return err
	}
	s, err := u.stage(f.ManifestDigest, c.DownloadOnly, c.AllowFailed)
	if err != nil {
		return err
	}
	if s.Reason == record.FailedBefore {
		return nil // nothing switched; bootc-stage said why
	}
	if c.Retain {
		if err := u.retainBooted(); err != nil {
			return err
		}
	}
	journal.Send(journal.Switch, journal.Info, fmt.Sprintf("Switching to %s (%s)", ref.Display(), f.ManifestDigest),
		map[string]string{"IMAGE": ref.Display(), "DEPLOYMENT": s.ID})
	if c.Apply && (s.Staged || s.Reason == record.AlreadyStaged) {
		return reboot()
	}
	return nil
}

// retainBooted keeps the image the host tracked before a switch in the store: collections pass
// it by until `bootc image unretain` lets it go.
func (u *update) retainBooted() error {
	st, err := status.Load(status.Options{Root: u.r, Cmdline: u.top.Cmdline})
	if err != nil {
		return err
	}
	if st.Booted == nil {
		return nil
	}
	im := st.Booted.Image
	if err := record.RetainImage(u.r, st.Booted.Stateroot, record.RetainedImage{
		ManifestDigest: im.ManifestDigest, Image: imgref.Ref{Transport: imgref.Transport(im.Ref.Transport), Image: im.Ref.Image}.Display(), Time: time.Now().UTC(),
	}); err != nil {
		return fmt.Errorf("retaining the previous image: %w", err)
	}
	fmt.Fprintf(u.e.stdout, "Retained %s (%s); bootc image unretain lets it go.\n", im.Ref.Image, im.ManifestDigest)
	return nil
}
