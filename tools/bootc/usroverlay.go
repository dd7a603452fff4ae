package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/host"
	"gobootc.dev/lib/record"
)

// Run mounts a transient overlay on /usr whose changes live in /run and vanish at reboot. It
// mounts in the host's own mount namespace: the point is for every process to see it.
func (c *UsrOverlayCmd) Run(top *CLI, e *env) error {
	if err := requireHost(); err != nil {
		return err
	}
	r := top.Layout()
	if _, err := os.Stat(r.Booted()); err != nil {
		return fmt.Errorf("needs a host booted through bootc (%s: %w)", r.Booted(), errors.Unwrap(err))
	}
	if err := record.ReadJSON(r.UsrOverlay(), &host.FilesystemOverlay{}); err == nil {
		return fmt.Errorf("%s already has an overlay (see bootc status)", c.Usr)
	} else if !errors.Is(err, record.ErrNotFound) {
		return err
	}
	dir := r.UsrOverlayDir()
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	// Left over from an attempt that failed before mounting: start clean.
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("preparing the overlay: %w", err)
		}
	}
	// The upper directory's root takes /usr's mode and owner, so the overlay's root looks like /usr.
	fi, err := os.Stat(c.Usr)
	if err != nil {
		return fmt.Errorf("overlaying %s: %w", c.Usr, err)
	}
	os.Chmod(upper, fi.Mode().Perm())
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", c.Usr, upper, work)
	if err := unix.Mount("overlay", c.Usr, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting an overlay on %s: %w", c.Usr, err)
	}
	state := host.FilesystemOverlay{AccessMode: host.AccessReadWrite, Persistence: host.PersistenceTransient}
	if c.ReadOnly {
		if err := unix.Mount("", c.Usr, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			unix.Unmount(c.Usr, unix.MNT_DETACH)
			return fmt.Errorf("making the overlay on %s read-only: %w", c.Usr, err)
		}
		state.AccessMode = host.AccessReadOnly
	}
	if err := record.Write(r.UsrOverlay(), &state); err != nil {
		unix.Unmount(c.Usr, unix.MNT_DETACH)
		return err
	}
	if c.ReadOnly {
		fmt.Fprintf(e.stdout, "A read-only overlay is now mounted on %s; it can be made writable in a private mount namespace, and is discarded on reboot.\n", c.Usr)
	} else {
		fmt.Fprintf(e.stdout, "Development mode enabled: a writable overlay is now mounted on %s. All changes there will be discarded on reboot.\n", c.Usr)
	}
	return nil
}
