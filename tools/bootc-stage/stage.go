package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/opencontainers/go-digest"

	"gobootc.dev/lib/boundimage"
	"gobootc.dev/lib/cleanup"
	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/deploy"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/mountns"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
	"gobootc.dev/lib/store"
)

// FinalizeUnit applies the staged deployment at shutdown (its ExecStop); it has to be running
// for that to happen.
const FinalizeUnit = "bootc-finalize.service"

// CLI is the command line.
type CLI struct {
	cli.Root
	Image        string        `help:"Manifest digest of the fetched image to stage." required:"" placeholder:"sha256:DIGEST"`
	Stateroot    string        `help:"Stateroot to deploy into." default:"default" placeholder:"NAME"`
	DownloadOnly bool          `help:"Stage without applying at shutdown, until 'bootc upgrade --from-downloaded'."`
	Karg         []string      `help:"Kernel argument to add if missing (repeatable); on a first deployment, the starting command line." sep:"none" placeholder:"KEY[=VALUE]"`
	NoArm        bool          `help:"Do not start bootc-finalize.service, which finalizes the staged deployment at shutdown."`
	AllowFailed  bool          `help:"Stage the image even if a deployment of it failed to boot here before (without it such an image is not staged, and the command still succeeds)."`
	Result       string        `help:"Also write the outcome as JSON to this file." placeholder:"FILE"`
	Cmdline      string        `help:"Kernel command line to read the booted deployment from." default:"/proc/cmdline" env:"BOOTC_CMDLINE" hidden:""`
	RebootFile   string        `name:"reboot-required-file" help:"File announcing that a reboot is required." default:"/run/reboot-required" env:"BOOTC_REBOOT_REQUIRED" hidden:""`
	LockWait     time.Duration `help:"How long to wait for another bootc operation to finish." default:"0s" hidden:""`
}

// Result is the outcome, for callers (the `bootc` front, agents) to read with --result.
type Result = record.StageResult

// Run stages the image. Step order: lock; compare with the staged and booted deployments
// (staging either again changes nothing); refuse an image that failed to boot here before,
// unless --allow-failed; build the deployment (lib/deploy); store the bound images it declares
// (bootc-bound-images), so they are there when it boots; write the staged record; start the
// finalize unit; announce (status stamp, reboot-required, journal); collect garbage
// (lib/cleanup), which also removes the deployment this one replaced, then the bound images
// that only deployments no longer kept declared.
func (c *CLI) Run(ctx context.Context, out, errOut io.Writer) (*Result, error) {
	if err := c.checkFlags(); err != nil {
		return nil, err
	}
	r := c.Layout()
	if !r.IsDeployed() {
		return nil, fmt.Errorf("%s holds no bootc state (%s): fetch the image first", r.Phys, r.Bootc())
	}
	if err := mountns.MakeWritable(r.Phys, r.Boot); err != nil {
		return nil, err
	}
	l, err := lock.Acquire(ctx, r.Lock(), lock.Options{
		Operation: "stage", Wait: c.LockWait,
		Notify: func(msg string) { fmt.Fprintln(errOut, msg) },
	})
	if err != nil {
		return nil, err
	}
	defer l.Release()

	fetched, st, err := c.readState(r)
	if err != nil {
		return nil, err
	}
	prevRec, prev, err := stagedDeployment(r, st)
	if err != nil {
		return nil, err
	}
	res := &Result{Stateroot: c.Stateroot, Image: c.Image, DownloadOnly: c.DownloadOnly, Version: fetched.Image.Version}
	if prev != nil && prev.Stateroot == c.Stateroot && prev.Image.ManifestDigest == c.Image {
		return c.alreadyStaged(ctx, r, res, prevRec, prev, out, errOut)
	}
	if b := st.Booted; b != nil && b.Stateroot == c.Stateroot && b.Image.ManifestDigest == c.Image {
		return c.alreadyBooted(ctx, r, l, res, prev, out, errOut)
	}

	if refused, err := c.checkFailed(r, res, out); err != nil {
		return nil, err
	} else if refused {
		return res, nil
	}

	d, err := c.build(ctx, r, st)
	if err != nil {
		return nil, err
	}
	if res.Armed, err = c.queue(ctx, r, l, d, prevRec, out, errOut); err != nil {
		return nil, err
	}
	res.Staged, res.ID = true, d.ID
	res.Kernel, res.BootDigest, res.Kargs = d.Kernel, d.BootDigest, d.Kargs
	if prev != nil {
		res.Replaced = prev.ID
	}
	if err := c.announce(r, d); err != nil {
		return nil, err
	}
	c.printQueued(out, d)
	c.collect(ctx, r, l, res, out, errOut)
	return res, nil
}

// checkFlags refuses an --image that is not a sha256 manifest digest and a bad --stateroot.
func (c *CLI) checkFlags() error {
	if d, err := digest.Parse(c.Image); err != nil || d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("--image %q: want a manifest digest sha256:<64 hex digits>", c.Image)
	}
	if err := layout.CheckName("stateroot", c.Stateroot); err != nil {
		return fmt.Errorf("--stateroot: %w", err)
	}
	return nil
}

// checkFailed refuses an image a deployment of which failed to boot in the stateroot, unless
// --allow-failed: staging it again would have the host try it, fail and fall back again, on
// every run of the update timer. The refusal is an outcome, not an error, so the timer's unit
// does not fail over it.
func (c *CLI) checkFailed(r layout.Root, res *Result, out io.Writer) (refused bool, err error) {
	fi, err := record.LookupFailedImage(r, c.Stateroot, c.Image)
	if err != nil || fi == nil {
		return false, err
	}
	res.Failed = fi
	if c.AllowFailed {
		fmt.Fprintf(out, "Staging %s although it %s.\n", c.Image, fi.Summary())
		return false, nil
	}
	res.Reason = record.FailedBefore
	fmt.Fprintf(out, "Not staging %s: it %s. Use --allow-failed to stage it all the same.\n", c.Image, fi.Summary())
	return true, nil
}

// readState reads the record of the fetched image and the host's current state.
func (c *CLI) readState(r layout.Root) (*record.FetchedImage, *status.State, error) {
	fetched, err := record.ReadFetchedImage(r, c.Image)
	if errors.Is(err, record.ErrNotFound) {
		return nil, nil, fmt.Errorf("image %s has not been fetched (no %s)", c.Image, r.ImageRecord(c.Image))
	}
	if err != nil {
		return nil, nil, err
	}
	st, err := status.Load(status.Options{Root: r, Cmdline: c.Cmdline})
	if err != nil {
		return nil, nil, fmt.Errorf("reading the current state: %w", err)
	}
	return fetched, st, nil
}

// build builds the deployment of the image; its /etc is merged from the booted deployment's
// when that is of the same stateroot.
func (c *CLI) build(ctx context.Context, r layout.Root, st *status.State) (*record.Deployment, error) {
	if err := r.Init(c.Stateroot); err != nil {
		return nil, err
	}
	s, err := store.Open(r.Store())
	if err != nil {
		return nil, err
	}
	var merge *record.Deployment
	if b := st.Booted; b != nil && b.Stateroot == c.Stateroot {
		merge = b.Deployment
	}
	return deploy.Build(ctx, deploy.Options{
		Root: r, Store: s, Stateroot: c.Stateroot, Image: c.Image, Merge: merge, Kargs: c.Karg,
	})
}

// queue stores the bound images of the new deployment d, writes the staged record and starts
// the finalize unit, reporting whether it did. On failure the previous staged record is put
// back and d discarded.
func (c *CLI) queue(ctx context.Context, r layout.Root, l *lock.Lock, d *record.Deployment, prevRec *record.Staged, out, errOut io.Writer) (bool, error) {
	if err := c.boundImages(ctx, r, l, d, out, errOut); err != nil {
		discard(r, d)
		return false, err
	}
	staged := &record.Staged{Version: record.FormatVersion, Stateroot: d.Stateroot, ID: d.ID, DownloadOnly: c.DownloadOnly, Created: d.Created}
	if err := record.Write(r.Staged(), staged); err != nil {
		discard(r, d)
		return false, err
	}
	// The unit's condition is the staged record, so it starts only after the record exists.
	armed, err := c.arm(ctx, errOut)
	if err != nil {
		restoreStaged(r, prevRec)
		discard(r, d)
		return false, err
	}
	return armed, nil
}

// printQueued tells the user what boots next.
func (c *CLI) printQueued(out io.Writer, d *record.Deployment) {
	fmt.Fprintf(out, "Queued for next boot: %s\n", imageName(d.Image))
	if d.Image.Version != "" {
		fmt.Fprintf(out, "  Version: %s\n", d.Image.Version)
	}
	fmt.Fprintf(out, "  Digest: %s\n", d.Image.ManifestDigest)
	if c.DownloadOnly {
		fmt.Fprintln(out, "Downloaded only: it will not be applied on reboot until 'bootc upgrade --from-downloaded'.")
	}
}

// BoundImagesTool pulls the bound images a deployment declares into bootc's storage (and
// collects those no kept deployment declares, in lib/cleanup).
const BoundImagesTool = cleanup.BoundImagesTool

// boundImages runs `bootc-bound-images sync` for a new deployment that declares bound images,
// handing it the writer lock. Deployments declaring none never need the tool (nor podman).
func (c *CLI) boundImages(ctx context.Context, r layout.Root, l *lock.Lock, d *record.Deployment, out, errOut io.Writer) error {
	has, err := boundimage.Declares(r.Deployment(d.Stateroot, d.ID))
	if err != nil || !has {
		return err
	}
	cmd, err := cli.StepCommand(ctx, BoundImagesTool, "--sysroot", r.Phys, "sync", "--deployment", layout.DeploymentKargValue(d.Stateroot, d.ID))
	if err != nil {
		return fmt.Errorf("deployment %s declares bound images: %w", d.ID, err)
	}
	cmd.Env = append(cmd.Env, "BOOTC_RUN_DIR="+r.Run)
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cli.RunStep(cmd, l); err != nil {
		return fmt.Errorf("storing the bound images of deployment %s: %w", d.ID, err)
	}
	return nil
}

// stagedDeployment returns the staged record and its deployment, or nils. status knows them
// only on a booted host; a first deployment is staged on one that is not.
func stagedDeployment(r layout.Root, st *status.State) (*record.Staged, *record.Deployment, error) {
	if st.StagedRec != nil {
		return st.StagedRec, st.Staged.Deployment, nil
	}
	rec, err := record.ReadStaged(r)
	if errors.Is(err, record.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	d, err := record.ReadDeployment(r, rec.Stateroot, rec.ID)
	if errors.Is(err, record.ErrNotFound) {
		// A deployment removed behind a stale record: nothing is staged.
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	return rec, d, nil
}

func (c *CLI) alreadyStaged(ctx context.Context, r layout.Root, res *Result, rec *record.Staged, d *record.Deployment, out, errOut io.Writer) (*Result, error) {
	res.Reason, res.ID = record.AlreadyStaged, d.ID
	fmt.Fprintf(out, "Image %s is already staged (deployment %s).\n", c.Image, d.ID)
	if rec.DownloadOnly != c.DownloadOnly {
		updated := *rec
		updated.DownloadOnly = c.DownloadOnly
		if err := record.Write(r.Staged(), &updated); err != nil {
			return nil, err
		}
		if c.DownloadOnly {
			fmt.Fprintln(out, "It will not be applied on reboot (download only).")
		} else {
			fmt.Fprintln(out, "It will now be applied on reboot.")
		}
		if err := record.StatusChanged(r); err != nil {
			return nil, err
		}
	}
	var err error
	if res.Armed, err = c.arm(ctx, errOut); err != nil {
		return nil, err
	}
	return res, nil
}

// alreadyBooted: asking for the booted image means the next boot should run it, so a
// deployment of another image staged meanwhile is discarded.
func (c *CLI) alreadyBooted(ctx context.Context, r layout.Root, l *lock.Lock, res *Result, prev *record.Deployment, out, errOut io.Writer) (*Result, error) {
	res.Reason = record.AlreadyBooted
	if prev == nil {
		fmt.Fprintf(out, "Image %s is already booted; nothing to stage.\n", c.Image)
		return res, nil
	}
	if err := record.Remove(r.Staged()); err != nil {
		return nil, err
	}
	res.Unstaged = prev.ID
	fmt.Fprintf(out, "Image %s is already booted; discarded the staged deployment %s (%s).\n", c.Image, prev.ID, prev.Image.ManifestDigest)
	if err := deploy.ClearRebootRequired(c.RebootFile, prev.Image.ManifestDigest); err != nil {
		return nil, err
	}
	if err := record.StatusChanged(r); err != nil {
		return nil, err
	}
	c.collect(ctx, r, l, res, out, errOut)
	return res, nil
}

// arm starts the finalize unit so that its ExecStop runs at shutdown. Outside a systemd host
// (a container, a test) there is nothing to start: say so and go on.
func (c *CLI) arm(ctx context.Context, errOut io.Writer) (bool, error) {
	if c.NoArm {
		return false, nil
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		fmt.Fprintf(errOut, "note: systemd is not running here; %s was not started, so nothing will finalize the staged deployment at shutdown\n", FinalizeUnit)
		return false, nil
	}
	// Images without a D-Bus daemon are common (minimal ones); systemd's private socket reaches
	// PID 1 all the same. A staged deployment that nothing finalizes would be lost silently, so
	// reaching neither is an error.
	conn, err := sddbus.NewSystemConnectionContext(ctx)
	if err != nil {
		var perr error
		if conn, perr = sddbus.NewSystemdConnectionContext(ctx); perr != nil {
			return false, fmt.Errorf("starting %s: cannot reach systemd on the system bus (%v) nor on its private socket (%v)", FinalizeUnit, err, perr)
		}
	}
	defer conn.Close()
	done := make(chan string, 1)
	if _, err := conn.StartUnitContext(ctx, FinalizeUnit, "replace", done); err != nil {
		return false, fmt.Errorf("starting %s: %w", FinalizeUnit, err)
	}
	select {
	case result := <-done:
		if result != "done" {
			return false, fmt.Errorf("starting %s: job %s", FinalizeUnit, result)
		}
	case <-ctx.Done():
		return false, fmt.Errorf("starting %s: %w", FinalizeUnit, ctx.Err())
	}
	return true, nil
}

func (c *CLI) announce(r layout.Root, d *record.Deployment) error {
	if err := record.StatusChanged(r); err != nil {
		return err
	}
	if err := deploy.WriteRebootRequired(c.RebootFile, d.Image.ManifestDigest); err != nil {
		return err
	}
	return journal.Send(journal.Stage, journal.Info,
		fmt.Sprintf("Staged deployment %s/%s of %s (%s)", d.Stateroot, d.ID, imageName(d.Image), d.Image.ManifestDigest),
		map[string]string{"IMAGE": d.Image.ManifestDigest, "DEPLOYMENT": layout.DeploymentKargValue(d.Stateroot, d.ID)})
}

// collect removes what no kept deployment needs: deployments (among them the one this stage
// replaced), then the bound images only they declared (lib/cleanup). The stage has succeeded
// by then, so a failure is reported as a warning (and in the result) rather than failing the
// command.
func (c *CLI) collect(ctx context.Context, r layout.Root, l *lock.Lock, res *Result, out, errOut io.Writer) {
	cr := cleanup.Run(ctx, cleanup.Options{Root: r, Cmdline: c.Cmdline, Lock: l, Out: out, ErrOut: errOut})
	if g := cr.GC; g != nil {
		res.GC = &record.StageGC{Deployments: g.Deployments, Images: g.Images, BootDirs: g.BootDirs, Layers: g.Layers, Objects: g.Objects, Bytes: g.Bytes}
	}
	if cr.GCErr != nil {
		res.GCError = cr.GCErr.Error()
		fmt.Fprintf(errOut, "warning: %v\n", cr.GCErr)
	}
	if cr.BoundImagesErr != nil {
		res.BoundImagesError = cr.BoundImagesErr.Error()
		fmt.Fprintf(errOut, "warning: %v\n", cr.BoundImagesErr)
	}
}

// discard removes a deployment built by a stage that then failed: record first, as gc does.
func discard(r layout.Root, d *record.Deployment) {
	record.Remove(r.DeploymentRecord(d.Stateroot, d.ID))
	os.RemoveAll(r.Deployment(d.Stateroot, d.ID))
}

func restoreStaged(r layout.Root, prev *record.Staged) {
	if prev == nil {
		record.Remove(r.Staged())
		return
	}
	record.Write(r.Staged(), prev)
}

func imageName(im record.Image) string {
	if im.Ref.Image == "" {
		return im.ManifestDigest
	}
	if im.Ref.Transport == "" || im.Ref.Transport == host.TransportRegistry {
		return im.Ref.Image
	}
	return im.Ref.Transport + ":" + im.Ref.Image
}
