package assess

import (
	"errors"
	"fmt"
	"time"

	"gobootc.dev/lib/health"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// Record describes the failed deployment for the failed images record: its image, and why it
// failed, from the health record its last checked boot kept (layout Root.DeploymentHealth). No
// record means no boot got as far as the checks: the kernel or the initramfs failed, or the
// machine hung until a watchdog or a person reset it.
func (f *Fallback) Record(r layout.Root, now time.Time) (record.FailedImage, error) {
	d := f.Failed
	fi := record.FailedImage{Stateroot: d.Stateroot, ID: d.ID, Time: now.UTC(), Tries: f.Tries}
	dep, err := record.ReadDeployment(r, d.Stateroot, d.ID)
	switch {
	case err == nil:
		fi.ManifestDigest, fi.Image = dep.Image.ManifestDigest, displayRef(dep.Image.Ref)
	case !errors.Is(err, record.ErrNotFound):
		return fi, err
	}
	h, err := record.ReadHealth(r.DeploymentHealth(d.Stateroot, d.ID))
	if err != nil && !errors.Is(err, record.ErrNotFound) {
		return fi, err
	}
	if fi.ManifestDigest == "" && h != nil {
		fi.ManifestDigest = h.ManifestDigest
	}
	tries := fmt.Sprintf("never reached a healthy boot in %d tries", f.Tries)
	if f.Tries == 1 {
		tries = "never reached a healthy boot in its one try"
	}
	switch {
	case h == nil:
		fi.Reason = tries + " (no health check ran: the kernel or initramfs failed)"
	case h.Failure() != nil:
		c := h.Failure()
		fi.Check, fi.LastLines = c.Path, c.LastLines
		fi.Reason = fmt.Sprintf("%s: required check %s failed (%s)", tries, c.Path, health.Reason(*c))
	case h.Verdict == record.Red:
		// RED with no failed check: redboot.target was reached from a unit's OnFailure.
		fi.Reason = tries + " (its health checks passed, but a unit ordered before boot-complete.target failed)"
	default:
		fi.Reason = tries + " (its health checks passed, but the boot never completed)"
	}
	if fi.ManifestDigest == "" {
		return fi, fmt.Errorf("describing failed deployment %s/%s: neither its record nor a health record names its image",
			d.Stateroot, d.ID)
	}
	return fi, nil
}

// displayRef is a reference as status shows it: registry images without their transport.
func displayRef(ref host.ImageReference) string {
	if ref.Transport == host.TransportRegistry || ref.Transport == "" {
		return ref.Image
	}
	return ref.Transport + ":" + ref.Image
}
