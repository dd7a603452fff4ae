// Package layout names every path bootc owns on a physical root, under /boot and under /run,
// and creates them with the right modes.
package layout

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Defaults on a booted host: the physical root is mounted read-only at /sysroot.
const (
	DefaultSysroot   = "/sysroot"
	DefaultRunDir    = "/run/bootc"
	DefaultStateroot = "default"
)

// ErrInvalidName is returned for stateroot names and deployment ids that could escape their directory.
var ErrInvalidName = errors.New("invalid name")

// Root is one physical root plus the per-boot run directory. Boot defaults to <Phys>/boot; a
// separate /boot partition is simply mounted there.
type Root struct {
	Phys string
	Boot string
	Run  string
}

// New returns the layout of a physical root; run may be empty for DefaultRunDir.
func New(phys, run string) Root {
	if run == "" {
		run = DefaultRunDir
	}
	return Root{Phys: phys, Boot: filepath.Join(phys, "boot"), Run: run}
}

// Bootc is the directory bootc owns; mode 0700 keeps old deployments away from unprivileged users.
func (r Root) Bootc() string { return filepath.Join(r.Phys, "bootc") }

// Lock is the single writer lock file.
func (r Root) Lock() string { return filepath.Join(r.Bootc(), "lock") }

// Store is the content store (objects/ and layers/).
func (r Root) Store() string { return filepath.Join(r.Bootc(), "store") }

// Images holds one directory per fetched manifest digest.
func (r Root) Images() string { return filepath.Join(r.Bootc(), "images") }

// Image is the directory of one fetched image, named by its manifest digest ("sha256:…" → "sha256-…").
func (r Root) Image(digest string) string {
	return filepath.Join(r.Images(), strings.Replace(digest, ":", "-", 1))
}

// ImageManifest, ImageConfig and ImageRecord are the files of a fetched image: the manifest and
// config exactly as fetched, and the record.Image describing it. The record is written last, so
// its presence means the image (and every layer it names) is complete.
func (r Root) ImageManifest(digest string) string {
	return filepath.Join(r.Image(digest), "manifest.json")
}

// ImageConfig is the image's config blob as fetched.
func (r Root) ImageConfig(digest string) string { return filepath.Join(r.Image(digest), "config.json") }

// ImageRecord is the record.Image of a fetched image.
func (r Root) ImageRecord(digest string) string { return filepath.Join(r.Image(digest), "image.json") }

// Deploy is the directory of a stateroot's deployment roots and records.
func (r Root) Deploy(stateroot string) string { return filepath.Join(r.Bootc(), "deploy", stateroot) }

// Deployment is a read-only deployment root.
func (r Root) Deployment(stateroot, id string) string { return filepath.Join(r.Deploy(stateroot), id) }

// DeploymentRecord is the JSON record describing a deployment.
func (r Root) DeploymentRecord(stateroot, id string) string {
	return filepath.Join(r.Deploy(stateroot), id+".json")
}

// State is a stateroot's writable state: each deployment's /etc and the shared /var.
func (r Root) State(stateroot string) string { return filepath.Join(r.Bootc(), "state", stateroot) }

// Etc is the writable /etc of one deployment.
func (r Root) Etc(stateroot, id string) string { return filepath.Join(r.State(stateroot), id, "etc") }

// Var is the /var shared by every deployment of a stateroot.
func (r Root) Var(stateroot string) string { return filepath.Join(r.State(stateroot), "var") }

// CachedUpdate records what `upgrade --check` found for the stateroot's tracked image.
func (r Root) CachedUpdate(stateroot string) string {
	return filepath.Join(r.State(stateroot), "cached-update.json")
}

// BoundStorage is the container storage for logically bound images.
func (r Root) BoundStorage() string { return filepath.Join(r.Bootc(), "storage") }

// StatusStamp is rewritten whenever the status changes, for bootc-status-updated.path to watch.
func (r Root) StatusStamp() string { return filepath.Join(r.Bootc(), "status-stamp") }

// BootConfig records how install laid out /boot, for every later writer of boot entries.
func (r Root) BootConfig() string { return filepath.Join(r.Bootc(), "boot.json") }

// FinalizeFailure is left by a failed finalize for the next boot to report.
func (r Root) FinalizeFailure() string { return filepath.Join(r.Bootc(), "finalize-failure.json") }

// CleanupPending is left by a finalize once the new boot entry set is written: deployments it
// dropped from the entries are removed by the cleanup at the next boot, which then deletes it.
func (r Root) CleanupPending() string { return filepath.Join(r.Bootc(), "cleanup-pending") }

// Provenance is the install-time record of where the system came from.
func (r Root) Provenance() string { return filepath.Join(r.Phys, ".bootc-aleph.json") }

// Entries is the BLS type 1 entry directory. boot/loader is a symlink to loader.0 or loader.1,
// swapped atomically by the bootloader package; only that package writes here.
func (r Root) Entries() string { return filepath.Join(r.Boot, "loader", "entries") }

// GrubCfg is the fixed GRUB configuration written at install; it loads the menu generated next
// to the entries (loader/grub.cfg), so GRUB switches sets together with them.
func (r Root) GrubCfg() string { return filepath.Join(r.Boot, "grub", "grub.cfg") }

// BootFiles holds a kernel and initramfs, shared by every entry with the same boot digest.
func (r Root) BootFiles(bootDigest string) string {
	return filepath.Join(r.Boot, "bootc", strings.Replace(bootDigest, ":", "-", 1))
}

// Staged names the staged deployment; it lives in /run so that it is forgotten on reboot.
func (r Root) Staged() string { return filepath.Join(r.Run, "staged.json") }

// Booted is written in the initramfs: which deployment this boot runs.
func (r Root) Booted() string { return filepath.Join(r.Run, "booted.json") }

// UsrOverlay records a transient /usr overlay made by `bootc usr-overlay`.
func (r Root) UsrOverlay() string { return filepath.Join(r.Run, "usr-overlay.json") }

// DeploymentKarg is the kernel argument naming the deployment to boot, as "<stateroot>/<id>".
const DeploymentKarg = "bootc.deployment"

// DeploymentKargValue formats the value of DeploymentKarg.
func DeploymentKargValue(stateroot, id string) string { return stateroot + "/" + id }

// ParseDeploymentKarg splits and validates a DeploymentKarg value.
func ParseDeploymentKarg(v string) (stateroot, id string, err error) {
	stateroot, id, ok := strings.Cut(v, "/")
	if !ok {
		return "", "", fmt.Errorf("kernel argument %s=%s: want <stateroot>/<id>", DeploymentKarg, v)
	}
	if err := CheckName("stateroot", stateroot); err != nil {
		return "", "", fmt.Errorf("kernel argument %s: %w", DeploymentKarg, err)
	}
	if err := CheckName("deployment id", id); err != nil {
		return "", "", fmt.Errorf("kernel argument %s: %w", DeploymentKarg, err)
	}
	return stateroot, id, nil
}

var nameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// CheckName validates a stateroot name or deployment id: it becomes a path component.
func CheckName(kind, name string) error {
	if !nameRe.MatchString(name) || len(name) > 128 {
		return fmt.Errorf("%s %q: %w (want letters, digits, '.', '_', '-', not starting with '.' or '-')", kind, name, ErrInvalidName)
	}
	return nil
}

// Init creates the directories a writer needs, with their modes, and is safe to repeat.
func (r Root) Init(stateroot string) error {
	if err := CheckName("stateroot", stateroot); err != nil {
		return err
	}
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{r.Bootc(), 0o700},
		{r.Store(), 0o700},
		{r.Images(), 0o700},
		{filepath.Join(r.Bootc(), "deploy"), 0o700},
		{r.Deploy(stateroot), 0o700},
		{filepath.Join(r.Bootc(), "state"), 0o700},
		{r.State(stateroot), 0o700},
		{r.Var(stateroot), 0o755},
		{r.BoundStorage(), 0o700},
		{r.Boot, 0o755},
		{filepath.Join(r.Boot, "bootc"), 0o755},
	}
	for _, d := range dirs {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return fmt.Errorf("creating %s: %w", d.path, err)
		}
		// MkdirAll leaves existing directories alone and applies the umask: set the mode explicitly.
		if err := os.Chmod(d.path, d.mode); err != nil {
			return fmt.Errorf("setting mode of %s: %w", d.path, err)
		}
	}
	return nil
}

// IsDeployed reports whether the physical root carries bootc state at all.
func (r Root) IsDeployed() bool {
	fi, err := os.Stat(r.Bootc())
	return err == nil && fi.IsDir()
}
