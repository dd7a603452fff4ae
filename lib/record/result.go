package record

import (
	"encoding/json"
	"fmt"
	"os"
)

// FetchResult is what `bootc-fetch --result FILE` writes for the tools that run it.
type FetchResult struct {
	ManifestDigest string `json:"manifestDigest"`
	Version        string `json:"version"`
	// Changed: the image differs from both the booted and the staged deployment.
	Changed       bool  `json:"changed"`
	AlreadyStaged bool  `json:"alreadyStaged"`
	BytesFetched  int64 `json:"bytesFetched"`
	LayersFetched int   `json:"layersFetched"`
	LayersReused  int   `json:"layersReused"`
}

// StageResult is what `bootc-stage --result FILE` writes.
type StageResult struct {
	// Staged is true when a new deployment was built and staged.
	Staged bool `json:"staged"`
	// Reason explains Staged false.
	Reason       StageReason `json:"reason,omitempty"`
	Stateroot    string      `json:"stateroot"`
	ID           string      `json:"id,omitempty"` // the staged deployment (new or already there)
	Image        string      `json:"image"`
	Version      string      `json:"version,omitempty"`
	Kernel       string      `json:"kernel,omitempty"`
	BootDigest   string      `json:"bootDigest,omitempty"`
	Kargs        string      `json:"kargs,omitempty"`
	DownloadOnly bool        `json:"downloadOnly"`
	// Replaced is the id of the staged deployment this one replaced; Unstaged the id of one
	// discarded because the booted image was asked for again.
	Replaced string `json:"replaced,omitempty"`
	Unstaged string `json:"unstaged,omitempty"`
	// Failed is the record of the image's earlier failure, with FailedBefore, or when it was
	// staged all the same.
	Failed *FailedImage `json:"failed,omitempty"`
	// Armed: bootc-finalize.service was started.
	Armed   bool     `json:"armed"`
	GC      *StageGC `json:"gc,omitempty"`
	GCError string   `json:"gcError,omitempty"`
	// BoundImagesError: removing the bound images no kept deployment declares failed (after
	// the deployments were collected, whatever GCError says).
	BoundImagesError string `json:"boundImagesError,omitempty"`
}

// StageReason says why a stage staged nothing new.
type StageReason string

// The reasons a StageResult gives; the values are part of the result's JSON.
const (
	// AlreadyStaged: the image is the staged deployment's already (its id is in the result).
	AlreadyStaged StageReason = "already-staged"
	// AlreadyBooted: the image is the booted deployment's.
	AlreadyBooted StageReason = "already-booted"
	// FailedBefore: a deployment of the image failed to boot in this stateroot (the result's
	// Failed says when and why); `--allow-failed` stages it all the same.
	FailedBefore StageReason = "failed-before"
)

// StageGC is what the collection after a stage removed.
type StageGC struct {
	Deployments []string `json:"deployments,omitempty"`
	Images      []string `json:"images,omitempty"`
	BootDirs    []string `json:"bootDirs,omitempty"`
	Layers      int      `json:"layers"`
	Objects     int      `json:"objects"`
	Bytes       int64    `json:"bytes"`
}

// WriteResult writes a step tool's --result. A path that is not a regular file (/dev/stdout, a
// pipe) is written in place: renaming a file over it would replace the device node or symlink.
func WriteResult(path string, v any) error {
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		_, err = f.Write(append(b, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
		return nil
	}
	return Write(path, v)
}

// ReadResult reads the --result a step tool wrote.
func ReadResult(tool, path string, v any) error {
	if err := ReadJSON(path, v); err != nil {
		return fmt.Errorf("reading %s's result: %w", tool, err)
	}
	return nil
}
