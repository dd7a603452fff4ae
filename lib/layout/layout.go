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
	return Root{Phys: phys, Boot: BootDir(phys), Run: run}
}

// BootDir is where a physical root's /boot is, or the mount point of a separate /boot.
func BootDir(phys string) string { return filepath.Join(phys, "boot") }

// Bootc is the directory bootc owns; mode 0700 keeps old deployments away from unprivileged users.
func (r Root) Bootc() string { return filepath.Join(r.Phys, "bootc") }

// Lock is the single writer lock file.
func (r Root) Lock() string { return filepath.Join(r.Bootc(), "lock") }

// Store is the content store (objects/ and layers/).
func (r Root) Store() string { return filepath.Join(r.Bootc(), "store") }

// Images holds one directory per fetched manifest digest.
func (r Root) Images() string { return filepath.Join(r.Bootc(), "images") }

// Image is the directory of one fetched image, named by its manifest digest.
func (r Root) Image(digest string) string { return filepath.Join(r.Images(), DigestDir(digest)) }

// DigestDir names the directory of a fetched image or a boot file set: "sha256:<hex>" becomes
// "sha256-<hex>", since FAT (an ESP holding the boot files) does not allow ':' in names.
func DigestDir(digest string) string { return strings.Replace(digest, ":", "-", 1) }

var digestDirRe = regexp.MustCompile(`^sha256-[0-9a-f]{64}$`)

// DirDigest turns a directory name made by DigestDir back into its digest; ok is false for any
// other name (a temporary, a stray file).
func DirDigest(name string) (digest string, ok bool) {
	if !digestDirRe.MatchString(name) {
		return "", false
	}
	return strings.Replace(name, "-", ":", 1), true
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

// Deploys holds one Deploy directory per stateroot.
func (r Root) Deploys() string { return filepath.Join(r.Bootc(), "deploy") }

// Deploy is the directory of a stateroot's deployment roots and records.
func (r Root) Deploy(stateroot string) string { return filepath.Join(r.Deploys(), stateroot) }

// Deployment is a read-only deployment root.
func (r Root) Deployment(stateroot, id string) string { return filepath.Join(r.Deploy(stateroot), id) }

// DeploymentRecord is the JSON record describing a deployment.
func (r Root) DeploymentRecord(stateroot, id string) string {
	return filepath.Join(r.Deploy(stateroot), id+".json")
}

// PristineEtc is a deployment's image /etc as the image shipped it: the base every /etc merge
// compares the live /etc with, and what a first boot copies.
func (r Root) PristineEtc(stateroot, id string) string { return ImageEtc(r.Deployment(stateroot, id)) }

// ImageEtc is where a deployment root, or an image tree on its way to become one, keeps the
// image's /etc.
func ImageEtc(root string) string { return filepath.Join(root, "usr", "etc") }

// States holds one State directory per stateroot.
func (r Root) States() string { return filepath.Join(r.Bootc(), "state") }

// State is a stateroot's writable state: each deployment's /etc and the shared /var.
func (r Root) State(stateroot string) string { return filepath.Join(r.States(), stateroot) }

// DeploymentState is the writable state of one deployment (its /etc), removed with it.
func (r Root) DeploymentState(stateroot, id string) string {
	return filepath.Join(r.State(stateroot), id)
}

// Etc is the writable /etc of one deployment.
func (r Root) Etc(stateroot, id string) string {
	return filepath.Join(r.DeploymentState(stateroot, id), "etc")
}

// DeploymentHealth is the outcome of the health checks of the last boot of a deployment, kept
// with its state for the boots after it (a fallback boot tells from it why the deployment
// failed); removed with the deployment.
func (r Root) DeploymentHealth(stateroot, id string) string {
	return filepath.Join(r.DeploymentState(stateroot, id), "health.json")
}

// Var is the /var shared by every deployment of a stateroot.
func (r Root) Var(stateroot string) string { return filepath.Join(r.State(stateroot), "var") }

// CachedUpdate records what `upgrade --check` found for the stateroot's tracked image.
func (r Root) CachedUpdate(stateroot string) string {
	return filepath.Join(r.State(stateroot), "cached-update.json")
}

// FailedImages lists the images of the stateroot whose deployment the boot loader fell back
// from, so that updates do not stage them again; it outlives their deployments.
func (r Root) FailedImages(stateroot string) string {
	return filepath.Join(r.State(stateroot), "failed-images.json")
}

// RetainedImages lists the images of the stateroot that `bootc switch --retain` keeps in the
// store after the host stopped tracking them.
func (r Root) RetainedImages(stateroot string) string {
	return filepath.Join(r.State(stateroot), "retained-images.json")
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
func (r Root) Entries() string { return LoaderEntries(Loader(r.Boot)) }

// BootFilesRoot holds the BootFiles directories.
func (r Root) BootFilesRoot() string { return filepath.Join(r.Boot, BootFilesDir) }

// BootFiles holds a kernel and initramfs, shared by every entry with the same boot digest.
func (r Root) BootFiles(bootDigest string) string {
	return filepath.Join(r.BootFilesRoot(), DigestDir(bootDigest))
}

// Names in a /boot, or in the ESP tree that stands for it.
const (
	// BootFilesDir is the directory of Root.BootFiles, under /boot.
	BootFilesDir = "bootc"
	// Vmlinuz and Initramfs are the files of a boot file set, named as in the image's
	// /usr/lib/modules/<version>/.
	Vmlinuz   = "vmlinuz"
	Initramfs = "initramfs.img"
	// GrubMenu is the GRUB menu generated next to the entries in each loader directory.
	GrubMenu = "grub.cfg"
)

// BootFilesPath is a boot file set as boot entries name it: relative to /boot, whatever
// filesystem /boot is on ("/bootc/sha256-<hex>").
func BootFilesPath(bootDigest string) string {
	return "/" + BootFilesDir + "/" + DigestDir(bootDigest)
}

// The paths below take the /boot directory rather than a Root: install fills an ESP from a
// staged copy of its tree, and the bootloader package is handed only that directory.

// Loader is boot/loader, which boot loaders read: in symlink mode a symlink to the current
// generation (boot/loader.0 or boot/loader.1), in FAT mode a plain directory.
func Loader(boot string) string { return filepath.Join(boot, "loader") }

// LoaderEntries is the entry directory of a loader directory (boot/loader or a generation).
func LoaderEntries(loader string) string { return filepath.Join(loader, "entries") }

// LoaderGrubMenu is the generated GRUB menu of a loader directory.
func LoaderGrubMenu(loader string) string { return filepath.Join(loader, GrubMenu) }

// LoaderConf is systemd-boot's configuration.
func LoaderConf(boot string) string { return filepath.Join(Loader(boot), "loader.conf") }

// GrubDir holds GRUB's modules and its fixed configuration.
func GrubDir(boot string) string { return filepath.Join(boot, "grub") }

// GrubConfig is the fixed GRUB configuration written at install; it loads the menu generated
// next to the entries (LoaderGrubMenu through boot/loader), so GRUB switches sets with them.
func GrubConfig(boot string) string { return filepath.Join(GrubDir(boot), "grub.cfg") }

// GrubEnv is GRUB's environment block, where its load_env and save_env look by default
// ($prefix/grubenv, $prefix being GrubDir): the boot counter of a trial entry lives there.
func GrubEnv(boot string) string { return filepath.Join(GrubDir(boot), "grubenv") }

// EFIRemovable is the boot loader a UEFI firmware starts from removable media, or from any disk
// without a boot variable; efiArch is the UEFI architecture name (x64, aa64).
func EFIRemovable(boot, efiArch string) string {
	return filepath.Join(boot, "EFI", "BOOT", "BOOT"+strings.ToUpper(efiArch)+".EFI")
}

// EFISystemdBoot is systemd-boot's own path on the ESP.
func EFISystemdBoot(boot, efiArch string) string {
	return filepath.Join(boot, "EFI", "systemd", "systemd-boot"+efiArch+".efi")
}

// The paths below configure boot counting (the bootcount package): they take the directory
// standing for / or /etc, since a deployment is configured before it boots.

// BootcountVendorDir holds the boot counting drop-ins an image ships, in the tree at root.
func BootcountVendorDir(root string) string {
	return filepath.Join(root, "usr", "lib", "bootc", "bootcount.d")
}

// BootcountAdminDir holds an administrator's boot counting drop-ins, in the /etc at etc.
func BootcountAdminDir(etc string) string { return filepath.Join(etc, "bootc", "bootcount.d") }

// GreenbootConf is greenboot's configuration file, in the /etc at etc; it is read, never written.
func GreenbootConf(etc string) string { return filepath.Join(etc, "greenboot", "greenboot.conf") }

// Staged names the staged deployment; it lives in /run so that it is forgotten on reboot.
func (r Root) Staged() string { return filepath.Join(r.Run, "staged.json") }

// Booted is written in the initramfs: which deployment this boot runs.
func (r Root) Booted() string { return filepath.Join(r.Run, "booted.json") }

// Health is the outcome of this boot's health checks (bootc-health check).
func (r Root) Health() string { return filepath.Join(r.Run, "health.json") }

// HealthFallback notes the fallback bootc-health check made permanent on this boot (the failed
// image as recorded), for the login messages written after it.
func (r Root) HealthFallback() string { return filepath.Join(r.Run, "health-fallback.json") }

// UsrOverlay records a transient /usr overlay made by `bootc usr-overlay`.
func (r Root) UsrOverlay() string { return filepath.Join(r.Run, "usr-overlay.json") }

// UsrOverlayDir holds that overlay's upper and work directories.
func (r Root) UsrOverlayDir() string { return filepath.Join(r.Run, "usr-overlay") }

// OfflineUpdateMount is where an offline update mounts its device. It is fixed, so the image
// reference the host tracks from it stays the same from one device to the next.
func (r Root) OfflineUpdateMount() string { return filepath.Join(r.Run, "offline-update") }

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
		{r.Deploys(), 0o700},
		{r.Deploy(stateroot), 0o700},
		{r.States(), 0o700},
		{r.State(stateroot), 0o700},
		{r.Var(stateroot), 0o755},
		{r.BoundStorage(), 0o700},
		{r.Boot, 0o755},
		{r.BootFilesRoot(), 0o755},
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
