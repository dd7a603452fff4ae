package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/durable"
	"gobootc.dev/lib/layout"
)

// ModulesDir holds a directory per kernel version in an image; the kernel's holds the boot files
// under the names they keep in /boot (layout.Vmlinuz, layout.Initramfs).
const ModulesDir = "usr/lib/modules"

// Kernel is the kernel an image boots.
type Kernel struct {
	Root    string // the tree it was found in
	Version string // directory name under usr/lib/modules
}

func (k Kernel) file(name string) string { return path.Join(ModulesDir, k.Version, name) }

// FindKernel finds the one usr/lib/modules/<version>/ of root that holds vmlinuz. Directories
// without vmlinuz (extra modules) are ignored; the kernel's directory must hold initramfs.img
// too, because the initramfs is what mounts the deployment.
func FindKernel(root string) (Kernel, error) {
	rt, err := os.OpenRoot(root)
	if err != nil {
		return Kernel{}, fmt.Errorf("finding the kernel: %w", err)
	}
	defer rt.Close()
	ents, err := fs.ReadDir(rt.FS(), ModulesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return Kernel{}, fmt.Errorf("%w: /%s does not exist", ErrNoKernel, ModulesDir)
	}
	if err != nil {
		return Kernel{}, fmt.Errorf("finding the kernel: %w", err)
	}
	var found []string
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		if fi, err := rt.Lstat(path.Join(ModulesDir, e.Name(), layout.Vmlinuz)); err == nil && fi.Mode().IsRegular() {
			found = append(found, e.Name())
		}
	}
	switch len(found) {
	case 0:
		return Kernel{}, fmt.Errorf("%w: no /%s/<version>/%s", ErrNoKernel, ModulesDir, layout.Vmlinuz)
	case 1:
	default:
		return Kernel{}, fmt.Errorf("%w: /%s has %s", ErrManyKernels, ModulesDir, strings.Join(found, ", "))
	}
	k := Kernel{Root: root, Version: found[0]}
	if fi, err := rt.Lstat(k.file(layout.Initramfs)); err != nil || !fi.Mode().IsRegular() {
		return Kernel{}, fmt.Errorf("%w: kernel %s has no regular file /%s", ErrNoKernel, k.Version, k.file(layout.Initramfs))
	}
	return k, nil
}

// BootDigest is "sha256:<hex>" over the kernel's bytes followed by the initramfs's: it names
// the /boot directory, so deployments with identical boot files share one.
func BootDigest(k Kernel) (string, error) {
	rt, err := os.OpenRoot(k.Root)
	if err != nil {
		return "", fmt.Errorf("hashing boot files: %w", err)
	}
	defer rt.Close()
	h := sha256.New()
	for _, name := range []string{layout.Vmlinuz, layout.Initramfs} {
		if err := hashFile(h, rt, k.file(name)); err != nil {
			return "", fmt.Errorf("hashing boot files: %w", err)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h hash.Hash, rt *os.Root, name string) error {
	f, err := rt.OpenFile(name, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", name)
	}
	_, err = io.Copy(h, f)
	return err
}

// InstallBootFiles puts the kernel and initramfs at layout BootFiles(digest) and returns the
// digest and whether the directory was created (false when an intact copy was already there).
// The files are written into a temporary directory, synced and renamed into place, so the
// directory is complete whenever it exists; one found damaged anyway (a copy made before a
// power cut without a synced filesystem) is rebuilt and swapped in atomically.
func InstallBootFiles(r layout.Root, k Kernel) (string, bool, error) {
	d, err := BootDigest(k)
	if err != nil {
		return "", false, err
	}
	dir := r.BootFiles(d)
	existed := false
	if _, err := os.Lstat(dir); err == nil {
		existed = true
		if intact(dir, d) {
			return d, false, nil
		}
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", false, fmt.Errorf("installing boot files: %w", err)
	}
	tmp := filepath.Join(parent, "."+filepath.Base(dir)+".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return "", false, fmt.Errorf("installing boot files: %w", err)
	}
	if err := copyBootFiles(k, tmp, d); err != nil {
		os.RemoveAll(tmp)
		return "", false, fmt.Errorf("installing boot files: %w", err)
	}
	if existed {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE)
	} else {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return "", false, fmt.Errorf("installing boot files: %w", err)
	}
	os.RemoveAll(tmp) // after an exchange: the damaged copy
	if err := durable.Sync(parent); err != nil {
		return "", false, fmt.Errorf("installing boot files: %w", err)
	}
	return d, !existed, nil
}

func copyBootFiles(k Kernel, tmp, want string) error {
	rt, err := os.OpenRoot(k.Root)
	if err != nil {
		return err
	}
	defer rt.Close()
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	h := sha256.New()
	for _, name := range []string{layout.Vmlinuz, layout.Initramfs} {
		if err := copyFile(rt, k.file(name), filepath.Join(tmp, name), h); err != nil {
			return err
		}
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("boot files of kernel %s changed while being copied", k.Version)
	}
	return durable.Sync(tmp)
}

func copyFile(rt *os.Root, src, dst string, h hash.Hash) error {
	in, err := rt.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.MultiWriter(out, h), in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return durable.Close(out)
}

// intact reports whether dir holds both boot files and they hash to digest.
func intact(dir, digest string) bool {
	rt, err := os.OpenRoot(dir)
	if err != nil {
		return false
	}
	defer rt.Close()
	h := sha256.New()
	for _, name := range []string{layout.Vmlinuz, layout.Initramfs} {
		if err := hashFile(h, rt, name); err != nil {
			return false
		}
	}
	return "sha256:"+hex.EncodeToString(h.Sum(nil)) == digest
}
