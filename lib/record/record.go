// Package record reads and writes the small JSON files that hand state between bootc's tools:
// deployment records, the staged record, the booted marker and the cached update.
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
)

// FormatVersion is the record format this code writes; newer records are refused rather than
// misread.
const FormatVersion = 1

// ErrNotFound means the record does not exist (no staged deployment, not booted via bootc, …).
var ErrNotFound = errors.New("record not found")

// Image is what a deployment was made from.
type Image struct {
	// Ref is the reference as the user gave it, with transport and signature mode.
	Ref            host.ImageReference `json:"ref"`
	ManifestDigest string              `json:"manifestDigest"`
	ConfigDigest   string              `json:"configDigest,omitempty"`
	Architecture   string              `json:"architecture"`
	Version        string              `json:"version,omitempty"`
	Created        *time.Time          `json:"created,omitempty"`
	Layers         []string            `json:"layers,omitempty"` // diff IDs in order
}

// Status renders the image as the Host document's ImageStatus.
func (im Image) Status() *host.ImageStatus {
	s := &host.ImageStatus{
		Image:        im.Ref,
		Timestamp:    im.Created,
		ImageDigest:  im.ManifestDigest,
		Architecture: im.Architecture,
	}
	if im.Version != "" {
		v := im.Version
		s.Version = &v
	}
	return s
}

// Deployment describes one deployment root.
type Deployment struct {
	Version    int       `json:"version"`
	Stateroot  string    `json:"stateroot"`
	ID         string    `json:"id"`
	Image      Image     `json:"image"`
	Kernel     string    `json:"kernel"`     // kernel version, the directory name under /usr/lib/modules
	BootDigest string    `json:"bootDigest"` // sha256 over kernel and initramfs, names the /boot directory
	Kargs      string    `json:"kargs"`      // the kernel command line, without the argument naming the deployment
	Pinned     bool      `json:"pinned,omitempty"`
	Created    time.Time `json:"created"`
}

// Staged names the deployment that finalize will make the default at shutdown.
type Staged struct {
	Version      int       `json:"version"`
	Stateroot    string    `json:"stateroot"`
	ID           string    `json:"id"`
	DownloadOnly bool      `json:"downloadOnly,omitempty"`
	Created      time.Time `json:"created"`
}

// Booted names the deployment this boot runs; the initramfs writes it.
type Booted struct {
	Version   int    `json:"version"`
	Stateroot string `json:"stateroot"`
	ID        string `json:"id"`
}

// CachedUpdate is what `upgrade --check` found for the tracked image, kept until the next check.
type CachedUpdate struct {
	Version   int       `json:"version"`
	Image     Image     `json:"image"`
	CheckedAt time.Time `json:"checkedAt"`
}

// FetchedImage is written last into an image's directory once its manifest, config and every
// layer are in the store.
type FetchedImage struct {
	Version   int       `json:"version"`
	Image     Image     `json:"image"`
	FetchedAt time.Time `json:"fetchedAt"`
}

// BootConfig is how install laid out /boot. A missing record means /boot is a directory on the
// physical root and the mode is detected.
type BootConfig struct {
	Version      int    `json:"version"`
	Bootloader   string `json:"bootloader,omitempty"` // grub, systemd, none
	BootSeparate bool   `json:"bootSeparate,omitempty"`
	FSUUID       string `json:"fsUUID,omitempty"`
	FAT          bool   `json:"fat,omitempty"`
	// Grub says GRUB boots from this disk, alone or (--generic-image) next to systemd-boot:
	// boot counting then arms grubenv too.
	Grub bool `json:"grub,omitempty"`
}

// FinalizeFailure is what a failed finalize leaves for the next boot to report.
type FinalizeFailure struct {
	Version   int       `json:"version"`
	Time      time.Time `json:"time"`
	Stateroot string    `json:"stateroot"`
	ID        string    `json:"id"`
	Error     string    `json:"error"`
}

// versioned lets Read check the format version of any record.
type versioned interface{ formatVersion() int }

func (d *Deployment) formatVersion() int   { return d.Version }
func (s *Staged) formatVersion() int       { return s.Version }
func (b *Booted) formatVersion() int       { return b.Version }
func (c *CachedUpdate) formatVersion() int { return c.Version }
func (f *FetchedImage) formatVersion() int { return f.Version }
func (b *BootConfig) formatVersion() int   { return b.Version }
func (f *FinalizeFailure) formatVersion() int {
	return f.Version
}

// ReadJSON decodes an unversioned JSON file (such as the /usr overlay state) into v.
func ReadJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", path, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parsing %s: %w", path, err)
	}
	return nil
}

// Read decodes the record at path into v, refusing unknown format versions.
func Read(path string, v versioned) error {
	if err := ReadJSON(path, v); err != nil {
		return err
	}
	if got := v.formatVersion(); got < 1 || got > FormatVersion {
		return fmt.Errorf("parsing %s: format version %d is not supported (this bootc reads 1 to %d)", path, got, FormatVersion)
	}
	return nil
}

// Write stores v at path atomically: readers see the old file or the new one, never a part.
func Write(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := renameio.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// Remove deletes a record; a missing one is not an error.
func Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// ReadDeployment loads one deployment record.
func ReadDeployment(r layout.Root, stateroot, id string) (*Deployment, error) {
	if err := layout.CheckName("stateroot", stateroot); err != nil {
		return nil, err
	}
	if err := layout.CheckName("deployment id", id); err != nil {
		return nil, err
	}
	d := &Deployment{}
	if err := Read(r.DeploymentRecord(stateroot, id), d); err != nil {
		return nil, err
	}
	if d.Stateroot != stateroot || d.ID != id {
		return nil, fmt.Errorf("reading deployment %s/%s: record names %s/%s", stateroot, id, d.Stateroot, d.ID)
	}
	return d, nil
}

// WriteDeployment stores a deployment record, filling in the format version.
func WriteDeployment(r layout.Root, d *Deployment) error {
	if err := layout.CheckName("stateroot", d.Stateroot); err != nil {
		return err
	}
	if err := layout.CheckName("deployment id", d.ID); err != nil {
		return err
	}
	d.Version = FormatVersion
	return Write(r.DeploymentRecord(d.Stateroot, d.ID), d)
}

// ListDeployments loads every deployment record of every stateroot, oldest first.
func ListDeployments(r layout.Root) ([]*Deployment, error) {
	base := r.Deploys()
	roots, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	var out []*Deployment
	for _, sr := range roots {
		if !sr.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(base, sr.Name()))
		if err != nil {
			return nil, fmt.Errorf("listing deployments: %w", err)
		}
		for _, f := range files {
			id, ok := strings.CutSuffix(f.Name(), ".json")
			if !ok || f.IsDir() {
				continue
			}
			d, err := ReadDeployment(r, sr.Name(), id)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].Stateroot+"/"+out[i].ID < out[j].Stateroot+"/"+out[j].ID
	})
	return out, nil
}

// ReadStaged returns the staged record, or ErrNotFound.
func ReadStaged(r layout.Root) (*Staged, error) {
	s := &Staged{}
	if err := Read(r.Staged(), s); err != nil {
		return nil, err
	}
	return s, nil
}

// ReadBooted returns the booted marker, or ErrNotFound.
func ReadBooted(r layout.Root) (*Booted, error) {
	b := &Booted{}
	if err := Read(r.Booted(), b); err != nil {
		return nil, err
	}
	return b, nil
}

// ReadFetchedImage returns the record of a fetched image by manifest digest, or ErrNotFound.
func ReadFetchedImage(r layout.Root, digest string) (*FetchedImage, error) {
	f := &FetchedImage{}
	if err := Read(r.ImageRecord(digest), f); err != nil {
		return nil, err
	}
	if f.Image.ManifestDigest != digest {
		return nil, fmt.Errorf("reading image %s: record names %s", digest, f.Image.ManifestDigest)
	}
	return f, nil
}

// StatusChanged rewrites the status stamp, which bootc-status-updated.path watches (a write and
// close, which inotify reports to path units as a change).
func StatusChanged(r layout.Root) error {
	stamp := time.Now().UTC().Format(time.RFC3339Nano) + "\n"
	if err := renameio.WriteFile(r.StatusStamp(), []byte(stamp), 0o644); err != nil {
		return fmt.Errorf("updating the status stamp: %w", err)
	}
	return nil
}

// ReadBootConfig returns the boot configuration; a root without one gets the defaults.
func ReadBootConfig(r layout.Root) (*BootConfig, error) {
	b := &BootConfig{}
	if err := Read(r.BootConfig(), b); err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	return b, nil
}

// ReadCachedUpdate returns the stateroot's cached update, or ErrNotFound.
func ReadCachedUpdate(r layout.Root, stateroot string) (*CachedUpdate, error) {
	c := &CachedUpdate{}
	if err := Read(r.CachedUpdate(stateroot), c); err != nil {
		return nil, err
	}
	return c, nil
}
