package record

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gobootc.dev/lib/layout"
)

// MaxFailedImages bounds the failed images kept per stateroot: a host that receives one bad
// image after another keeps the newest, and the file stays small.
const MaxFailedImages = 16

// FailedImage is an image whose deployment never reached a healthy boot in its tries: the boot
// loader fell back from it. Stage refuses to stage it again unless asked to, so that an update
// timer does not loop through the same bad image.
type FailedImage struct {
	ManifestDigest string `json:"manifestDigest"`
	// Image is the reference the deployment came from, as status shows it (quay.io/x/os:latest,
	// oci:/path:tag).
	Image string `json:"image,omitempty"`
	// Stateroot and ID name the deployment that failed; it may be gone since.
	Stateroot string `json:"stateroot"`
	ID        string `json:"id"`
	// Time is when the failure was found: the fallback boot.
	Time time.Time `json:"time"`
	// Reason says in one line why the deployment failed (a check and how it ended, or that no
	// boot got as far as the checks).
	Reason string `json:"reason"`
	// Check is the required health check that failed, LastLines the last lines of its output;
	// both empty when no check ran.
	Check     string   `json:"check,omitempty"`
	LastLines []string `json:"lastLines,omitempty"`
	// Tries is how many boots the deployment was given.
	Tries int `json:"tries,omitempty"`
}

// Summary is the failure in one line, for the messages that refuse the image: "failed to boot
// here at <time>: <why>".
func (fi *FailedImage) Summary() string {
	return "failed to boot here at " + fi.Time.UTC().Truncate(time.Second).Format(time.RFC3339) + ": " + fi.Why()
}

// Why is the failure's reason, naming the check when the reason does not.
func (fi *FailedImage) Why() string {
	why := fi.Reason
	if fi.Check != "" && !strings.Contains(why, fi.Check) {
		if why == "" {
			return "required check " + fi.Check + " failed"
		}
		why += " (check " + fi.Check + ")"
	}
	if why == "" {
		return "no reason recorded"
	}
	return why
}

// FailedImages is the record of a stateroot's failed images (Root.FailedImages), oldest first.
type FailedImages struct {
	Version int           `json:"version"`
	Images  []FailedImage `json:"images"`
}

func (f *FailedImages) formatVersion() int { return f.Version }

// Lookup returns the entry of the image with that manifest digest, or nil.
func (f *FailedImages) Lookup(digest string) *FailedImage {
	if f == nil || digest == "" {
		return nil
	}
	for i := len(f.Images) - 1; i >= 0; i-- {
		if f.Images[i].ManifestDigest == digest {
			return &f.Images[i]
		}
	}
	return nil
}

// ReadFailedImages returns the stateroot's failed images; a stateroot without any gets an empty
// record, not an error.
func ReadFailedImages(r layout.Root, stateroot string) (*FailedImages, error) {
	if err := layout.CheckName("stateroot", stateroot); err != nil {
		return nil, err
	}
	f := &FailedImages{}
	if err := Read(r.FailedImages(stateroot), f); errors.Is(err, ErrNotFound) {
		return &FailedImages{Version: FormatVersion}, nil
	} else if err != nil {
		return nil, err
	}
	return f, nil
}

// LookupFailedImage returns the stateroot's entry for the image with that manifest digest, or
// nil when the image has not failed there.
func LookupFailedImage(r layout.Root, stateroot, digest string) (*FailedImage, error) {
	f, err := ReadFailedImages(r, stateroot)
	if err != nil {
		return nil, err
	}
	return f.Lookup(digest), nil
}

// AddFailedImage records that an image failed in the stateroot. An earlier entry for the same
// digest is replaced (the newest failure is the one worth telling), and only the newest
// MaxFailedImages are kept. The caller holds the writer lock: this reads, changes and rewrites
// the record.
func AddFailedImage(r layout.Root, stateroot string, fi FailedImage) error {
	if fi.ManifestDigest == "" {
		return fmt.Errorf("recording a failed image: no manifest digest")
	}
	f, err := ReadFailedImages(r, stateroot)
	if err != nil {
		return err
	}
	if fi.Stateroot == "" {
		fi.Stateroot = stateroot
	}
	f.Images = slices.DeleteFunc(f.Images, func(e FailedImage) bool { return e.ManifestDigest == fi.ManifestDigest })
	f.Images = append(f.Images, fi)
	if n := len(f.Images); n > MaxFailedImages {
		f.Images = f.Images[n-MaxFailedImages:]
	}
	f.Version = FormatVersion
	return Write(r.FailedImages(stateroot), f)
}

// RemoveFailedImage forgets that an image failed in the stateroot (it since booted well);
// reports whether there was an entry. The caller holds the writer lock.
func RemoveFailedImage(r layout.Root, stateroot, digest string) (bool, error) {
	f, err := ReadFailedImages(r, stateroot)
	if err != nil {
		return false, err
	}
	n := len(f.Images)
	f.Images = slices.DeleteFunc(f.Images, func(e FailedImage) bool { return e.ManifestDigest == digest })
	if len(f.Images) == n {
		return false, nil
	}
	f.Version = FormatVersion
	return true, Write(r.FailedImages(stateroot), f)
}
