package record

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"time"

	"gobootc.dev/lib/layout"
)

// RetainedImage is an image `bootc switch --retain` kept: the image the host tracked before the
// switch stays in the store through every collection until `bootc image unretain` lets it go.
type RetainedImage struct {
	ManifestDigest string `json:"manifestDigest"`
	// Image is the reference it was tracked under, as status shows it.
	Image string    `json:"image,omitempty"`
	Time  time.Time `json:"time"`
}

// RetainedImages is the record of a stateroot's retained images (Root.RetainedImages), oldest
// first.
type RetainedImages struct {
	Version int             `json:"version"`
	Images  []RetainedImage `json:"images"`
}

func (r *RetainedImages) formatVersion() int { return r.Version }

// ReadRetainedImages returns the stateroot's retained images; none is an empty record.
func ReadRetainedImages(r layout.Root, stateroot string) (*RetainedImages, error) {
	if err := layout.CheckName("stateroot", stateroot); err != nil {
		return nil, err
	}
	ri := &RetainedImages{}
	if err := Read(r.RetainedImages(stateroot), ri); errors.Is(err, ErrNotFound) {
		return &RetainedImages{Version: FormatVersion}, nil
	} else if err != nil {
		return nil, err
	}
	return ri, nil
}

// RetainImage adds an image to the stateroot's retained images (once per digest). The caller
// holds the writer lock.
func RetainImage(r layout.Root, stateroot string, img RetainedImage) error {
	ri, err := ReadRetainedImages(r, stateroot)
	if err != nil {
		return err
	}
	ri.Images = slices.DeleteFunc(ri.Images, func(e RetainedImage) bool { return e.ManifestDigest == img.ManifestDigest })
	ri.Images = append(ri.Images, img)
	ri.Version = FormatVersion
	return Write(r.RetainedImages(stateroot), ri)
}

// Unretain removes the stateroot's retained images that match (all of them when match is nil)
// and returns them. The caller holds the writer lock.
func Unretain(r layout.Root, stateroot string, match func(RetainedImage) bool) ([]RetainedImage, error) {
	ri, err := ReadRetainedImages(r, stateroot)
	if err != nil {
		return nil, err
	}
	var gone []RetainedImage
	ri.Images = slices.DeleteFunc(ri.Images, func(e RetainedImage) bool {
		if match == nil || match(e) {
			gone = append(gone, e)
			return true
		}
		return false
	})
	if len(gone) == 0 {
		return nil, nil
	}
	return gone, Write(r.RetainedImages(stateroot), ri)
}

// Stateroots lists the stateroots that have state (bootc/state/<stateroot>), by name.
func Stateroots(r layout.Root) ([]string, error) {
	des, err := os.ReadDir(r.States())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing stateroots: %w", err)
	}
	var out []string
	for _, de := range des {
		if de.IsDir() && layout.CheckName("stateroot", de.Name()) == nil {
			out = append(out, de.Name())
		}
	}
	return out, nil
}

// RetainedDigests are the manifest digests of the images any stateroot retains.
func RetainedDigests(r layout.Root) (map[string]bool, error) {
	srs, err := Stateroots(r)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, sr := range srs {
		ri, err := ReadRetainedImages(r, sr)
		if err != nil {
			return nil, err
		}
		for _, img := range ri.Images {
			out[img.ManifestDigest] = true
		}
	}
	return out, nil
}
