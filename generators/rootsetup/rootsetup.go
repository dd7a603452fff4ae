// Package rootsetup mounts the bootc deployment named on the kernel command line as the root the
// initramfs switches into, and re-applies its read-only mounts on the booted host.
//
// # In the initramfs (Setup)
//
// sysroot.mount has mounted the physical root at /sysroot. The kernel command line names the
// deployment with bootc.deployment=<stateroot>/<id>. Setup then:
//
//  1. makes the initramfs's mount tree private (mount --make-rprivate /): the kernel refuses
//     to move a mount whose parent is shared, and systemd makes / shared;
//  2. remounts the physical root's file system read-write if it was mounted read-only (`ro`
//     or no `rw` on the kernel command line): /etc and /var live on it and must stay writable;
//  3. on the first boot of a deployment whose writable /etc does not exist yet, copies the
//     image's pristine usr/etc to bootc/state/<stateroot>/<id>/etc (a fallback: finalize creates
//     it with the three-way merge, install as a copy); creates the shared /var if missing;
//  4. bind-mounts the deployment root bootc/deploy/<stateroot>/<id> at a staging directory
//     of the initramfs (/sysroot.bootc). It cannot be assembled in place: moving /sysroot
//     onto a mount that lives under /sysroot is refused by the kernel (ELOOP);
//  5. bind-mounts the writable /etc and the shared bootc/state/<stateroot>/var on its etc
//     and var (read-write);
//  6. makes the deployment mount read-only with MS_REMOUNT|MS_BIND|MS_RDONLY, a per-mount
//     flag: the file system itself stays writable for the /etc and /var mounts;
//  7. moves the physical root to <staging>/sysroot and makes that mount read-only the same
//     way;
//  8. moves the assembled tree onto /sysroot, where systemd switches root into it;
//  9. writes /run/bootc/booted.json ({"version":1,"stateroot":…,"id":…}); systemd carries
//     /run across the switch.
//
// The result on the booted host: / the deployment (read-only, so /usr is too), /etc and /var
// writable, /sysroot the physical root (read-only).
//
// # On a boot on trial (ArmTrialReboot)
//
// A boot the boot loader counts must end in a reset when it fails, never in a console waiting
// for a person: only the next boot lets the boot loader count the try and fall back. dracut
// does that when told rd.shell=0 rd.emergency=reboot. GRUB adds these to a trial entry's
// command line; systemd-boot counts in the entry's file name and leaves the command line alone,
// but sets the EFI variable LoaderBootCountPath when the entry it booted is counted. The
// initramfs runs this command as a systemd generator (bootc-root-setup-generator), before any
// unit starts: when that variable is there it writes the two arguments to
// /run/bootc/trial-cmdline.conf (a generator may write nothing but /run), where the link
// /etc/cmdline.d/50-bootc-trial.conf that the dracut module installs points. dracut's getarg
// reads /etc/cmdline.d before /proc/cmdline, so an rd.shell=1 typed in the boot menu still
// wins. Entries that are not on trial keep the emergency shell.
//
// # On the booted host (Remount)
//
// The kernel command line carries `rw` (bootc writes root=UUID=… rw, as ostree does), but `ro`
// works as well thanks to step 2. systemd-remount-fs remounts / when /etc/fstab has a / line
// (with that line's options), and when root discovery by partition type asks for it
// (SYSTEMD_REMOUNT_ROOT_RW, set by systemd-gpt-auto-generator with `rw` and no root=). That is
// a non-bind remount: it changes the superblock (already writable) and clears the read-only
// flag of the / mount. Remount, run by bootc-remount.service right after systemd-remount-fs,
// sets the per-mount read-only flag on / and /sysroot again, leaving the file system writable
// for /etc and /var; when nothing was remounted it does nothing.
package rootsetup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/durable"
	"gobootc.dev/lib/layout"
)

var (
	// ErrNoKarg means the kernel command line names no deployment.
	ErrNoKarg = errors.New("no " + layout.DeploymentKarg + "= kernel argument")
	// ErrNoDeployment means the named deployment root does not exist on the physical root.
	ErrNoDeployment = errors.New("deployment not found")
)

// DefaultStaging is where the deployment is assembled in the initramfs: outside /sysroot, on
// the initramfs's own root.
const DefaultStaging = "/sysroot.bootc"

// System is the kernel interface Setup and Remount use; tests record the calls instead.
type System interface {
	Mount(source, target, fstype string, flags uintptr, data string) error
	// MountFlags returns the per-mount flags of the mount holding path (ST_* values, which
	// equal the MS_* ones).
	MountFlags(path string) (uintptr, error)
}

// Kernel is the real System.
type Kernel struct{}

// Mount calls mount(2).
func (Kernel) Mount(source, target, fstype string, flags uintptr, data string) error {
	return syscall.Mount(source, target, fstype, flags, data)
}

// MountFlags calls statfs(2).
func (Kernel) MountFlags(path string) (uintptr, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uintptr(st.Flags), nil
}

// keptFlags are the per-mount flags a bind remount must repeat, or it would clear them.
const keptFlags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC | syscall.MS_NOATIME |
	syscall.MS_NODIRATIME | syscall.MS_RELATIME

// Config is what Setup works on; the zero values of Staging and Run mean the defaults.
type Config struct {
	Sysroot   string // where the physical root is mounted
	Staging   string // an empty directory outside Sysroot
	Run       string // the run directory that receives booted.json
	Stateroot string
	ID        string
	Log       io.Writer // progress lines; nil discards them
}

// DeploymentFromCmdline returns the deployment a kernel command line names; when the argument
// is repeated the last one wins, as with every kernel argument.
func DeploymentFromCmdline(text string) (stateroot, id string, err error) {
	c, err := cmdline.Parse(strings.TrimSpace(text))
	if err != nil {
		return "", "", fmt.Errorf("parsing the kernel command line: %w", err)
	}
	vals := c.Get(layout.DeploymentKarg)
	if len(vals) == 0 {
		return "", "", ErrNoKarg
	}
	return layout.ParseDeploymentKarg(vals[len(vals)-1])
}

// Setup assembles the deployment at c.Sysroot as described in the package documentation. Step
// order: check the configuration and the deployment; prepare the physical root (1, 2); the
// writable /etc (3); the mount points; assemble the tree (4 to 8); the booted marker (9).
func Setup(sys System, c Config) error {
	if c.Staging == "" {
		c.Staging = DefaultStaging
	}
	if c.Run == "" {
		c.Run = layout.DefaultRunDir
	}
	logf := func(format string, args ...any) {
		if c.Log != nil {
			fmt.Fprintf(c.Log, format+"\n", args...)
		}
	}
	if err := checkConfig(c); err != nil {
		return err
	}
	r := layout.New(c.Sysroot, c.Run)
	dep := r.Deployment(c.Stateroot, c.ID)
	name := layout.DeploymentKargValue(c.Stateroot, c.ID)
	pristineEtc, err := checkDeployment(dep, name)
	if err != nil {
		return err
	}
	if err := prepareSysroot(sys, c.Sysroot, logf); err != nil {
		return err
	}
	etc := r.Etc(c.Stateroot, c.ID)
	if err := ensureEtc(etc, pristineEtc, name, logf); err != nil {
		return err
	}
	vr := r.Var(c.Stateroot)
	if err := makeMountPoints(dep, vr, c.Staging); err != nil {
		return err
	}
	if err := assemble(sys, c, dep, etc, vr); err != nil {
		return err
	}
	if err := writeBooted(r.Booted(), c.Stateroot, c.ID); err != nil {
		return err
	}
	logf("mounted deployment %s on %s (/etc, /var writable; /, /sysroot read-only)", name, c.Sysroot)
	return nil
}

// checkConfig refuses names that are not a stateroot and a deployment id, and a staging
// directory inside the physical root.
func checkConfig(c Config) error {
	if err := layout.CheckName("stateroot", c.Stateroot); err != nil {
		return err
	}
	if err := layout.CheckName("deployment id", c.ID); err != nil {
		return err
	}
	if rel, err := filepath.Rel(c.Sysroot, c.Staging); err != nil || !strings.HasPrefix(rel, "..") {
		return fmt.Errorf("staging directory %s must lie outside %s", c.Staging, c.Sysroot)
	}
	return nil
}

// checkDeployment checks that the deployment root dep exists and holds the image's pristine
// usr/etc, and returns the latter.
func checkDeployment(dep, name string) (string, error) {
	if fi, err := os.Stat(dep); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("deployment %s: %s: %w", name, dep, ErrNoDeployment)
	}
	pristineEtc := layout.ImageEtc(dep)
	if fi, err := os.Stat(pristineEtc); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("deployment %s has no usr/etc (not a bootc deployment root)", name)
	}
	return pristineEtc, nil
}

// prepareSysroot makes the mount tree private and the physical root's file system writable
// (steps 1 and 2).
func prepareSysroot(sys System, sysroot string, logf func(string, ...any)) error {
	if err := sys.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mount tree private: %w", err)
	}
	flags, err := sys.MountFlags(sysroot)
	if err != nil {
		return fmt.Errorf("reading the mount flags of %s: %w", sysroot, err)
	}
	if flags&syscall.MS_RDONLY != 0 {
		logf("remounting the physical root %s read-write for /etc and /var", sysroot)
		if err := sys.Mount("", sysroot, "", syscall.MS_REMOUNT|(flags&keptFlags), ""); err != nil {
			return fmt.Errorf("remounting %s read-write: %w", sysroot, err)
		}
	}
	return nil
}

// ensureEtc copies the pristine usr/etc to the writable /etc etc on a deployment's first boot,
// when stage or install did not create it (step 3).
func ensureEtc(etc, pristineEtc, name string, logf func(string, ...any)) error {
	if _, err := os.Lstat(etc); errors.Is(err, fs.ErrNotExist) {
		logf("first boot of %s: copying usr/etc to %s", name, etc)
		if err := copyEtc(pristineEtc, etc); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("checking %s: %w", etc, err)
	}
	return nil
}

// makeMountPoints creates the shared /var vr, the mount points of the deployment dep and the
// staging directory.
func makeMountPoints(dep, vr, staging string) error {
	if err := os.MkdirAll(vr, 0o755); err != nil {
		return fmt.Errorf("creating the shared /var: %w", err)
	}
	// Mount points an image may lack; the file system is writable until step 6.
	for _, d := range []string{"etc", "var", "sysroot"} {
		if err := os.MkdirAll(filepath.Join(dep, d), 0o755); err != nil {
			return fmt.Errorf("creating mount point /%s in the deployment: %w", d, err)
		}
	}
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return fmt.Errorf("creating the staging directory: %w", err)
	}
	return nil
}

// assemble mounts the deployment dep with its /etc and /var at the staging directory, moves
// the physical root into it and moves it onto the physical root's place (steps 4 to 8).
func assemble(sys System, c Config, dep, etc, vr string) error {
	steps := []struct {
		what           string
		source, target string
		flags          uintptr
		readOnly       bool
	}{
		{what: "binding the deployment root", source: dep, target: c.Staging, flags: syscall.MS_BIND},
		{what: "binding the writable /etc", source: etc, target: filepath.Join(c.Staging, "etc"), flags: syscall.MS_BIND},
		{what: "binding the shared /var", source: vr, target: filepath.Join(c.Staging, "var"), flags: syscall.MS_BIND},
		{what: "making the deployment root read-only", target: c.Staging, readOnly: true},
		{what: "moving the physical root into the deployment", source: c.Sysroot, target: filepath.Join(c.Staging, "sysroot"), flags: syscall.MS_MOVE},
		{what: "making the physical root read-only", target: filepath.Join(c.Staging, "sysroot"), readOnly: true},
		{what: "moving the deployment onto " + c.Sysroot, source: c.Staging, target: c.Sysroot, flags: syscall.MS_MOVE},
	}
	for _, s := range steps {
		if s.readOnly {
			if err := makeReadOnly(sys, s.target); err != nil {
				return fmt.Errorf("%s: %w", s.what, err)
			}
			continue
		}
		if err := sys.Mount(s.source, s.target, "", s.flags, ""); err != nil {
			return fmt.Errorf("%s (%s on %s): %w", s.what, s.source, s.target, err)
		}
	}
	// The staging directory is empty again; leaving it costs nothing, so failure is ignored.
	_ = os.Remove(c.Staging)
	return nil
}

// makeReadOnly sets the per-mount read-only flag of the mount at target, keeping its other
// per-mount flags; the superblock is left alone.
func makeReadOnly(sys System, target string) error {
	flags, err := sys.MountFlags(target)
	if err != nil {
		return fmt.Errorf("reading the mount flags of %s: %w", target, err)
	}
	if err := sys.Mount("", target, "", syscall.MS_REMOUNT|syscall.MS_BIND|syscall.MS_RDONLY|(flags&keptFlags), ""); err != nil {
		return fmt.Errorf("remounting %s read-only: %w", target, err)
	}
	return nil
}

// Remount makes each of paths read-only (per mount) unless it already is, and reports which
// ones it changed. On the booted host the paths are / and /sysroot.
func Remount(sys System, paths ...string) (changed []string, err error) {
	for _, p := range paths {
		flags, err := sys.MountFlags(p)
		if err != nil {
			return changed, fmt.Errorf("reading the mount flags of %s: %w", p, err)
		}
		if flags&syscall.MS_RDONLY != 0 {
			continue
		}
		if err := makeReadOnly(sys, p); err != nil {
			return changed, err
		}
		changed = append(changed, p)
	}
	return changed, nil
}

// booted is the marker's format, the same as lib/record.Booted (kept local: lib/record would
// bring YAML and the Host types into the initramfs).
type booted struct {
	Version   int    `json:"version"`
	Stateroot string `json:"stateroot"`
	ID        string `json:"id"`
}

// writeBooted writes the booted marker atomically.
func writeBooted(path, stateroot, id string) error {
	data, err := json.MarshalIndent(booted{Version: 1, Stateroot: stateroot, ID: id}, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	_, werr := f.Write(append(data, '\n'))
	if werr != nil {
		f.Close()
	} else {
		werr = durable.Close(f)
	}
	if err := werr; err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
