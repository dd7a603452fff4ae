package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/mountns"
	"gobootc.dev/lib/status"
)

// OfflineUpdateCmd updates the host from an OCI image layout on a removable filesystem, such as
// a USB stick made with `skopeo copy docker://… oci:/media/stick/os.oci:latest`.
type OfflineUpdateCmd struct {
	Device string `help:"Block device holding the update (the udev rule passes it)." required:""`
	Apply  bool   `help:"Reboot into the update once it is staged." env:"BOOTC_OFFLINE_APPLY"`
	FSType string `help:"Filesystem type of the device (default: detected by mount)." hidden:""`
	Quiet  bool   `help:"Do not show progress."`
}

// Run mounts the device read-only in this process's private mount namespace (it vanishes when the
// process ends, so pulling the stick afterwards is safe), finds the layout, and switches to it or
// upgrades from it when it is already the tracked source. The mount point is fixed, so the
// reference the host tracks stays the same from one stick to the next.
func (c *OfflineUpdateCmd) Run(top *CLI, e *env) error {
	r, err := top.managedRoot()
	if err != nil {
		return err
	}
	// Enter the private namespace first: the stick is mounted there, never on the host.
	if err := mountns.MakeWritable(r.Phys, r.Boot); err != nil {
		return err
	}
	if err := mountns.Private(); err != nil {
		return err
	}
	mnt := r.OfflineUpdateMount()
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return err
	}
	if err := c.mountStick(mnt); err != nil {
		return err
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	layoutDir, tag, err := findLayout(mnt)
	if err != nil {
		return fmt.Errorf("%s: %w", c.Device, err)
	}
	target := layoutDir
	if tag != "" {
		target += ":" + tag
	}
	fmt.Fprintf(e.stdout, "Offline update from %s: %s\n", c.Device, target)
	h, err := status.Build(status.Options{Root: r, Cmdline: top.Cmdline})
	if err != nil {
		return err
	}
	if img := h.Spec.Image; img != nil && img.Transport == "oci" && img.Image == target {
		return (&UpgradeCmd{Apply: c.Apply, Quiet: c.Quiet, ProgressFD: -1}).Run(top, e)
	}
	return (&SwitchCmd{Target: target, Transport: "oci", Apply: c.Apply, Quiet: c.Quiet, ProgressFD: -1}).Run(top, e)
}

// mountStick mounts the device read-only; without --fs-type it tries the filesystems sticks
// carry, as mount(8) would.
func (c *OfflineUpdateCmd) mountStick(mnt string) error {
	types := []string{"ext4", "vfat", "exfat", "xfs", "btrfs"}
	if c.FSType != "" {
		types = []string{c.FSType}
	}
	var err error
	for _, t := range types {
		if err = unix.Mount(c.Device, mnt, t, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err == nil {
			return nil
		}
	}
	return fmt.Errorf("mounting %s read-only: %w", c.Device, err)
}

// findLayout finds the one OCI image layout at the top of the filesystem or one level down, and
// the tag to use when its index names exactly one.
func findLayout(mnt string) (dir, tag string, err error) {
	var found []string
	for _, pattern := range []string{"oci-layout", "*/oci-layout"} {
		m, _ := filepath.Glob(filepath.Join(mnt, pattern))
		for _, p := range m {
			found = append(found, filepath.Dir(p))
		}
	}
	sort.Strings(found)
	switch len(found) {
	case 0:
		return "", "", errors.New("no OCI image layout found (want a directory with an oci-layout file, as `skopeo copy … oci:DIR:TAG` makes)")
	case 1:
	default:
		return "", "", fmt.Errorf("several OCI image layouts found (%v): keep one per device", found)
	}
	var index struct {
		Manifests []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	data, err := os.ReadFile(filepath.Join(found[0], "index.json"))
	if err != nil {
		return "", "", fmt.Errorf("reading the layout's index: %w", err)
	}
	if err := json.Unmarshal(data, &index); err != nil {
		return "", "", fmt.Errorf("reading the layout's index: %w", err)
	}
	var tags []string
	for _, m := range index.Manifests {
		if t := m.Annotations["org.opencontainers.image.ref.name"]; t != "" {
			tags = append(tags, t)
		}
	}
	if len(tags) > 1 {
		return "", "", fmt.Errorf("the layout at %s holds several images (%v): keep one", found[0], tags)
	}
	if len(tags) == 1 {
		tag = tags[0]
	}
	return found[0], tag, nil
}
