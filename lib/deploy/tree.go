package deploy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"gobootc.dev/lib/layout"
)

// mountPoints are the directories the initramfs and systemd mount over; a deployment root is
// read-only at boot, so they must exist in the tree itself.
var mountPoints = []struct {
	name string
	mode os.FileMode
}{
	{"etc", 0o755},
	{"var", 0o755},
	{"sysroot", 0o755},
	{"run", 0o755},
	{"proc", 0o555},
	{"sys", 0o555},
	{"dev", 0o755},
	{"tmp", 0o777 | os.ModeSticky},
	{"boot", 0o755},
}

var epoch = time.Unix(0, 0)

// fixTree turns a composed image root into a deployment root: the image's /etc is kept
// pristine at usr/etc (the writable /etc is made from it at finalize) and the mount points
// exist. Every path is examined with lstat first, so nothing is done through a symlink the
// image put in place.
func fixTree(root string) error {
	usr := filepath.Join(root, "usr")
	if fi, err := os.Lstat(usr); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: /usr is missing or not a directory", ErrBadImageTree)
	}
	etc := filepath.Join(root, "etc")
	usrEtc := layout.ImageEtc(root)
	etcInfo, err := lstatMaybe(etc)
	if err != nil {
		return err
	}
	usrEtcInfo, err := lstatMaybe(usrEtc)
	if err != nil {
		return err
	}
	switch {
	case etcInfo != nil && !etcInfo.IsDir():
		return fmt.Errorf("%w: /etc is a %s, not a directory", ErrBadImageTree, kind(etcInfo))
	case usrEtcInfo != nil && !usrEtcInfo.IsDir():
		return fmt.Errorf("%w: /usr/etc is a %s, not a directory", ErrBadImageTree, kind(usrEtcInfo))
	case etcInfo != nil && usrEtcInfo != nil:
		return fmt.Errorf("%w: both /etc and /usr/etc are present; an image carries its /etc in one place", ErrBadImageTree)
	case etcInfo != nil:
		if err := os.Rename(etc, usrEtc); err != nil {
			return fmt.Errorf("moving /etc to /usr/etc: %w", err)
		}
	case usrEtcInfo == nil:
		// finalize merges against usr/etc; an image without /etc has an empty one.
		if err := mkdirEpoch(usrEtc, 0o755); err != nil {
			return err
		}
	}
	if err := os.Chtimes(usr, epoch, epoch); err != nil {
		return fmt.Errorf("setting mtime of /usr: %w", err)
	}
	for _, mp := range mountPoints {
		p := filepath.Join(root, mp.name)
		fi, err := lstatMaybe(p)
		if err != nil {
			return err
		}
		if fi == nil {
			if err := mkdirEpoch(p, mp.mode); err != nil {
				return err
			}
			continue
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: /%s is a %s; it must be a directory to be mounted over", ErrBadImageTree, mp.name, kind(fi))
		}
	}
	if err := os.Chtimes(root, epoch, epoch); err != nil {
		return fmt.Errorf("setting mtime of the deployment root: %w", err)
	}
	return nil
}

func lstatMaybe(p string) (fs.FileInfo, error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("examining image tree: %w", err)
	}
	return fi, nil
}

// mkdirEpoch creates a directory with an exact mode (no umask) and the timestamp Compose gives
// every directory, so deployments of one image are identical trees.
func mkdirEpoch(p string, mode os.FileMode) error {
	if err := os.Mkdir(p, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	if err := os.Chmod(p, mode); err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	if err := os.Chtimes(p, epoch, epoch); err != nil {
		return fmt.Errorf("creating %s: %w", p, err)
	}
	return nil
}

func kind(fi fs.FileInfo) string {
	switch m := fi.Mode(); {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "regular file"
	}
	return "special file"
}
