package status

import (
	"errors"
	"os"
	"strings"

	"gobootc.dev/lib/health"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// bootIDFile holds the kernel's id of the running boot.
const bootIDFile = "/proc/sys/kernel/random/boot_id"

// bootHealth is this boot's verdict from the run directory's health record. A record of
// another boot (its boot id differs) or of another deployment (a soft reboot keeps /run) is
// not this boot's, and none is shown until the checks have run.
func bootHealth(opts Options, booted *Deployment) (*host.BootHealth, error) {
	h, err := record.ReadHealth(opts.Root.Health())
	if errors.Is(err, record.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	bootID := opts.BootID
	if bootID == "" {
		if b, err := os.ReadFile(bootIDFile); err == nil {
			bootID = strings.TrimSpace(string(b))
		}
	}
	if h.BootID != "" && bootID != "" && h.BootID != bootID {
		return nil, nil
	}
	if h.ID != "" && (h.Stateroot != booted.Stateroot || h.ID != booted.ID) {
		return nil, nil
	}
	bh := &host.BootHealth{Verdict: string(h.Verdict), Time: h.Finished, FailedCheck: h.Failed}
	if f := h.Failure(); f != nil {
		bh.Reason, bh.LastLines = health.Reason(*f), f.LastLines
	}
	if a := h.Assessment; a != nil {
		bh.Assessment = a.Action
	}
	return bh, nil
}

// failedUpdates lists the images of the stateroot that failed to boot, oldest first.
func failedUpdates(r layout.Root, stateroot string) ([]host.FailedUpdate, error) {
	f, err := record.ReadFailedImages(r, stateroot)
	if err != nil {
		return nil, err
	}
	var out []host.FailedUpdate
	for _, fi := range f.Images {
		sr := fi.Stateroot
		if sr == "" {
			sr = stateroot
		}
		out = append(out, host.FailedUpdate{
			Digest: fi.ManifestDigest, Image: fi.Image, Deployment: layout.DeploymentKargValue(sr, fi.ID),
			Time: fi.Time, Reason: fi.Reason, Check: fi.Check, LastLines: fi.LastLines, Tries: fi.Tries,
		})
	}
	return out, nil
}
