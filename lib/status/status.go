// Package status builds the Host document from a physical root and renders it for people and
// programs.
package status

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gobootc.dev/lib/assess"
	"gobootc.dev/lib/blockdev"
	"gobootc.dev/lib/bls"
	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// Options say where to look. Tests and pipelines point them at a directory.
type Options struct {
	Root layout.Root
	// Cmdline is the kernel command line file, consulted when the initramfs left no booted marker.
	Cmdline string
	// BootedOnly drops the staged and rollback slots (`status --booted`).
	BootedOnly bool
	// EFIVars is the directory of EFI variables, where systemd-boot leaves word that it booted
	// (boot counting then reads entry names, not grubenv); empty means $BOOTC_EFIVARS_DIR, else
	// the kernel's.
	EFIVars string
	// BootID is this boot's id, which a health record must carry to be this boot's verdict;
	// empty reads the kernel's.
	BootID string
}

// Deployment is a deployment together with where it sits in the boot order.
type Deployment struct {
	*record.Deployment
	// Entry is the BLS entry file name as the boot loader left it, boot counter included
	// (bootc-2+1-2.conf while on trial under systemd-boot); "" when the boot loader does not
	// list the deployment. Entries are matched to deployments by their bootc.deployment
	// argument, so a renamed entry is still the same deployment's.
	Entry string
}

// BootName is the deployment's entry split into the entry's identity and its boot counter:
// whether it is on trial, bad, or blessed. ok is false when the boot loader does not list it.
func (d *Deployment) BootName() (n bootcount.Name, ok bool) {
	if d.Entry == "" {
		return bootcount.Name{}, false
	}
	return bootcount.ParseName(d.Entry), true
}

// State is everything known about the physical root, before it is shaped into a Host document.
// Tools that change the system (rollback, finalize, edit) start from it.
type State struct {
	Booted    *Deployment
	Staged    *Deployment
	Rollback  *Deployment
	Others    []*Deployment
	BootOrder []*Deployment // as the boot loader lists them, default first
	StagedRec *record.Staged
}

// BootedID finds which deployment is running: the initramfs marker first, then the kernel
// argument. It returns ErrNotFound on a host not booted through bootc.
func BootedID(r layout.Root, cmdlinePath string) (stateroot, id string, err error) {
	if b, err := record.ReadBooted(r); err == nil {
		return b.Stateroot, b.ID, nil
	} else if !errors.Is(err, record.ErrNotFound) {
		return "", "", err
	}
	if cmdlinePath == "" {
		return "", "", record.ErrNotFound
	}
	data, err := os.ReadFile(cmdlinePath)
	if err != nil {
		return "", "", fmt.Errorf("reading kernel command line: %w", err)
	}
	c, err := cmdline.Parse(strings.TrimSpace(string(data)))
	if err != nil {
		return "", "", fmt.Errorf("reading kernel command line: %w", err)
	}
	vals := c.Get(layout.DeploymentKarg)
	if len(vals) == 0 {
		return "", "", record.ErrNotFound
	}
	return layout.ParseDeploymentKarg(vals[len(vals)-1])
}

// Load reads the physical root. A host that bootc does not manage yields an empty State.
func Load(opts Options) (*State, error) {
	r := opts.Root
	st := &State{}
	if !r.IsDeployed() {
		return st, nil
	}
	sr, id, err := BootedID(r, opts.Cmdline)
	if errors.Is(err, record.ErrNotFound) {
		return st, nil
	}
	if err != nil {
		return nil, err
	}
	all, err := record.ListDeployments(r)
	if err != nil {
		return nil, err
	}
	byKey := map[string]*Deployment{}
	var ordered []*Deployment
	for _, d := range all {
		dep := &Deployment{Deployment: d}
		byKey[d.Stateroot+"/"+d.ID] = dep
		ordered = append(ordered, dep)
	}
	st.Booted = byKey[sr+"/"+id]
	if st.Booted == nil {
		return nil, fmt.Errorf("booted deployment %s/%s has no record under %s", sr, id, r.Bootc())
	}
	entries, err := bls.ReadDir(r.Entries())
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		c, err := cmdline.Parse(e.Cmdline())
		if err != nil {
			return nil, fmt.Errorf("boot entry %s: %w", e.Name, err)
		}
		for _, v := range c.Get(layout.DeploymentKarg) {
			esr, eid, err := layout.ParseDeploymentKarg(v)
			if err != nil {
				return nil, fmt.Errorf("boot entry %s: %w", e.Name, err)
			}
			if dep := byKey[esr+"/"+eid]; dep != nil && dep.Entry == "" {
				dep.Entry = e.Name
				st.BootOrder = append(st.BootOrder, dep)
			}
		}
	}
	if s, err := record.ReadStaged(r); err == nil {
		st.StagedRec = s
		st.Staged = byKey[s.Stateroot+"/"+s.ID]
		if st.Staged == nil {
			return nil, fmt.Errorf("staged deployment %s/%s has no record under %s", s.Stateroot, s.ID, r.Bootc())
		}
	} else if !errors.Is(err, record.ErrNotFound) {
		return nil, err
	}
	for _, d := range st.BootOrder {
		if d != st.Booted && d != st.Staged && d.Stateroot == st.Booted.Stateroot {
			st.Rollback = d
			break
		}
	}
	// Other deployments are the pinned ones and those the boot loader still lists (another
	// stateroot's); an unpinned, unlisted deployment is garbage awaiting collection, not a slot.
	for _, d := range ordered {
		if d != st.Booted && d != st.Staged && d != st.Rollback && (d.Pinned || d.Entry != "") {
			st.Others = append(st.Others, d)
		}
	}
	return st, nil
}

// EntryOrder is what a new boot entry set lists, in boot order: first, second, then every
// pinned deployment (no entry set drops a pinned one).
func (s *State) EntryOrder(first, second *Deployment) []*record.Deployment {
	order := []*record.Deployment{first.Deployment, second.Deployment}
	for _, d := range s.Others {
		if d.Pinned {
			order = append(order, d.Deployment)
		}
	}
	return order
}

// RollbackQueued reports whether the rollback deployment boots next.
func (s *State) RollbackQueued() bool {
	for _, d := range s.BootOrder {
		switch d {
		case s.Rollback:
			return s.Rollback != nil
		case s.Booted:
			return false
		}
	}
	return false
}

// Build returns the Host document for the options' physical root.
func Build(opts Options) (*host.Host, error) {
	st, err := Load(opts)
	if err != nil {
		return nil, err
	}
	return st.Host(opts)
}

// Host shapes the state into the Host document.
func (s *State) Host(opts Options) (*host.Host, error) {
	h := host.New()
	h.Status.ReadOnly = readOnlyMedium(opts.Root.Phys)
	if s.Booted == nil {
		return h, nil
	}
	r := opts.Root
	// Counting is a refinement: boot entries or a grubenv that cannot be read leave it out
	// rather than fail the whole document.
	count, err := assess.Load(assess.Options{Root: r, Stateroot: s.Booted.Stateroot, ID: s.Booted.ID, EFIVars: opts.EFIVars})
	if err != nil {
		count = &assess.State{}
	}
	entry := func(d *Deployment) *host.BootEntry {
		return &host.BootEntry{Image: d.Image.Status(), Pinned: d.Pinned, BootCount: count.Count(d.Stateroot, d.ID)}
	}
	booted := entry(s.Booted)
	if c, err := record.ReadCachedUpdate(r, s.Booted.Stateroot); err == nil {
		if sameSource(c.Image.Ref, s.Booted.Image.Ref) {
			booted.CachedUpdate = c.Image.Status()
		}
	} else if !errors.Is(err, record.ErrNotFound) {
		return nil, err
	}
	h.Status.Booted = booted
	t := host.HostTypeBootc
	h.Status.Type = &t
	if !opts.BootedOnly {
		if s.Staged != nil {
			h.Status.Staged = entry(s.Staged)
			h.Status.Staged.DownloadOnly = s.StagedRec.DownloadOnly
			h.Status.Staged.SoftRebootCapable = softRebootCapable(r, s.Booted, s.Staged)
		}
		if s.Rollback != nil {
			h.Status.Rollback = entry(s.Rollback)
			h.Status.Rollback.SoftRebootCapable = softRebootCapable(r, s.Booted, s.Rollback)
		}
		h.Status.RollbackQueued = s.RollbackQueued()
	}
	for _, d := range s.Others {
		h.Status.OtherDeployments = append(h.Status.OtherDeployments, *entry(d))
	}
	if h.Status.RollbackQueued {
		h.Spec.BootOrder = host.BootOrderRollback
	}
	spec := s.Booted
	if h.Status.Staged != nil {
		spec = s.Staged
	}
	ref := spec.Image.Ref
	h.Spec.Image = &ref
	overlay := &host.FilesystemOverlay{}
	if err := record.ReadJSON(r.UsrOverlay(), overlay); err == nil {
		h.Status.UsrOverlay = overlay
	} else if !errors.Is(err, record.ErrNotFound) {
		return nil, err
	}
	if h.Status.Health, err = bootHealth(opts, s.Booted); err != nil {
		return nil, err
	}
	if h.Status.FailedUpdates, err = failedUpdates(r, s.Booted.Stateroot); err != nil {
		return nil, err
	}
	return h, nil
}

func sameSource(a, b host.ImageReference) bool {
	return a.Transport == b.Transport && a.Image == b.Image
}

// softRebootCapable: systemd can switch to the target's userspace without a kernel restart when
// the kernel, initramfs and command line are the same and the booted systemd supports it.
func softRebootCapable(r layout.Root, booted, target *Deployment) bool {
	if target.BootDigest == "" || target.BootDigest != booted.BootDigest || target.Kargs != booted.Kargs {
		return false
	}
	_, err := os.Stat(filepath.Join(r.Deployment(booted.Stateroot, booted.ID), "usr/lib/systemd/system/soft-reboot.target"))
	return err == nil
}

// readOnlyMedium reports a physical root on a read-only device (a live medium): a booted host
// always mounts /sysroot read-only, so only the device's own flag tells.
func readOnlyMedium(phys string) bool {
	m, err := blockdev.At(phys)
	if err != nil || m == nil {
		return false
	}
	data, err := os.ReadFile("/sys/dev/block/" + m.MajMin + "/ro")
	return err == nil && strings.TrimSpace(string(data)) == "1"
}
