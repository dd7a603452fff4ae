// Package blockdev prepares block devices for an install: loop devices for image files, GPT
// partition tables, filesystems, and the checks that keep a disk in use from being touched.
//
// It drives the usual tools (losetup, partx, sgdisk, wipefs, mkfs.*, blkid) rather than
// the kernel interfaces directly: they are what an administrator would run by hand, and
// their diagnostics are what the user needs to see when a step fails. Partition devices are
// found through sysfs, which also works where no udev runs (containers, build hosts); the
// kernel only scans partition tables of real disks itself, so after partitioning a loop
// device partx tells it about the partitions.
package blockdev

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Errors callers test with errors.Is.
var (
	// ErrNotBlockDevice: the path is not a block device.
	ErrNotBlockDevice = errors.New("not a block device")
	// ErrInUse: the device holds partitions or filesystem signatures, or is mounted.
	ErrInUse = errors.New("device in use")
	// ErrUnknownFilesystem: Mkfs does not know how to make the filesystem type.
	ErrUnknownFilesystem = errors.New("unknown filesystem type")
)

// sysBlock is where the kernel lists block devices and their partitions.
var sysBlock = "/sys/class/block"

// run runs a tool and returns its standard output; a failure carries the tool's own message.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.Join(strings.Fields(stderr.String()), " ")
		if msg == "" {
			msg = err.Error()
		}
		return stdout.String(), fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), msg)
	}
	return stdout.String(), nil
}

// CheckBlockDevice returns ErrNotBlockDevice (wrapped, naming the path) unless path is a block
// device.
func CheckBlockDevice(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("device %s: %w", path, errors.Unwrap(err))
	}
	if fi.Mode()&os.ModeDevice == 0 || fi.Mode()&os.ModeCharDevice != 0 {
		return fmt.Errorf("%s: %w", path, ErrNotBlockDevice)
	}
	return nil
}

// Loop is a loop device attached to an image file.
type Loop struct {
	Device string
	File   string
}

// AttachLoop attaches file to a free loop device and makes the kernel list the partitions of
// any partition table already in it.
func AttachLoop(ctx context.Context, file string) (*Loop, error) {
	fi, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("attaching loop device: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("attaching loop device: %s is not a regular file", file)
	}
	out, err := run(ctx, "losetup", "--find", "--show", file)
	if err != nil {
		return nil, fmt.Errorf("attaching loop device: %w", err)
	}
	l := &Loop{Device: strings.TrimSpace(out), File: file}
	// An empty or unpartitioned file has no table to add; that is not an error here.
	run(ctx, "partx", "--add", l.Device)
	return l, nil
}

// Detach removes the loop device's partitions from the kernel and detaches it. It runs with
// its own context so that a cancelled install still cleans up.
func (l *Loop) Detach() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if parts, _ := Partitions(l.Device); len(parts) > 0 {
		run(ctx, "partx", "--delete", l.Device)
	}
	var err error
	// The device can be busy for a moment after an unmount (udev probing it, if any).
	for i := 0; i < 20; i++ {
		if _, err = run(ctx, "losetup", "--detach", l.Device); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("detaching loop device: %w", err)
}

// Partitions lists the partition devices the kernel knows on disk, in partition order.
func Partitions(disk string) ([]string, error) {
	name := filepath.Base(disk)
	ents, err := os.ReadDir(filepath.Join(sysBlock, name))
	if err != nil {
		return nil, fmt.Errorf("listing partitions of %s: %w", disk, err)
	}
	type part struct {
		n    int
		name string
	}
	var parts []part
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), name) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(sysBlock, name, e.Name(), "partition"))
		if err != nil {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			continue
		}
		parts = append(parts, part{n, e.Name()})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].n < parts[j].n })
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		out = append(out, filepath.Join("/dev", p.name))
	}
	return out, nil
}

// PartitionDevice names partition n of disk the way the kernel does: a "p" separates the
// number from a disk name ending in a digit (loop0p1, nvme0n1p2, but sda1).
func PartitionDevice(disk string, n int) string {
	if last := disk[len(disk)-1]; last >= '0' && last <= '9' {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}

// Disk returns the whole disk a partition device belongs to, or dev itself when it is not
// a partition.
func Disk(dev string) (string, error) {
	real, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return "", fmt.Errorf("finding the disk of %s: %w", dev, err)
	}
	name := filepath.Base(real)
	if _, err := os.Stat(filepath.Join(sysBlock, name, "partition")); err != nil {
		return real, nil
	}
	target, err := filepath.EvalSymlinks(filepath.Join(sysBlock, name))
	if err != nil {
		return "", fmt.Errorf("finding the disk of %s: %w", dev, err)
	}
	return filepath.Join("/dev", filepath.Base(filepath.Dir(target))), nil
}

// Signatures lists the signatures wipefs finds on dev (partition table types, filesystem
// types), without changing anything.
func Signatures(ctx context.Context, dev string) ([]string, error) {
	out, err := run(ctx, "wipefs", "--noheadings", "--output", "TYPE", dev)
	if err != nil {
		return nil, fmt.Errorf("probing %s: %w", dev, err)
	}
	return strings.Fields(out), nil
}

// CheckUnused refuses a disk that is mounted (itself or a partition), that has partitions, or
// that carries any filesystem or partition table signature.
func CheckUnused(ctx context.Context, disk string) error {
	if err := CheckNotMounted(disk); err != nil {
		return err
	}
	parts, err := Partitions(disk)
	if err != nil {
		return err
	}
	if len(parts) > 0 {
		return fmt.Errorf("%w: %s has partitions (%s); use --wipe to erase them", ErrInUse, disk, strings.Join(parts, ", "))
	}
	sigs, err := Signatures(ctx, disk)
	if err != nil {
		return err
	}
	if len(sigs) > 0 {
		return fmt.Errorf("%w: %s holds %s signatures; use --wipe to erase them", ErrInUse, disk, strings.Join(sigs, ", "))
	}
	return nil
}

// CheckNotMounted refuses a disk that is mounted or has a mounted partition.
func CheckNotMounted(disk string) error {
	parts, err := Partitions(disk)
	if err != nil {
		return err
	}
	devs := map[string]bool{}
	for _, d := range append(parts, disk) {
		st, err := statRdev(d)
		if err == nil {
			devs[st] = true
		}
	}
	mounts, err := Mounts()
	if err != nil {
		return err
	}
	for _, m := range mounts {
		if devs[m.MajMin] {
			return fmt.Errorf("%w: %s is mounted at %s", ErrInUse, m.Source, m.Target)
		}
	}
	return nil
}

func statRdev(dev string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d:%d", unix.Major(uint64(st.Rdev)), unix.Minor(uint64(st.Rdev))), nil
}

// Wipe erases every signature of the disk's partitions and of the disk itself, and removes the
// partitions from the kernel's view.
func Wipe(ctx context.Context, disk string) error {
	if err := CheckNotMounted(disk); err != nil {
		return err
	}
	parts, err := Partitions(disk)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := run(ctx, "wipefs", "--all", "--quiet", p); err != nil {
			return fmt.Errorf("wiping %s: %w", p, err)
		}
	}
	if len(parts) > 0 {
		run(ctx, "partx", "--delete", disk)
	}
	if _, err := run(ctx, "wipefs", "--all", "--quiet", disk); err != nil {
		return fmt.Errorf("wiping %s: %w", disk, err)
	}
	return nil
}

// Part is one partition to create.
type Part struct {
	// SizeMiB is the size in MiB; 0 takes the rest of the disk (only the last partition).
	SizeMiB int64
	// Type is an sgdisk type code (EF02 BIOS boot, EF00 EFI system, 8304 x86-64 root, …).
	Type string
	Name string
}

// Partition writes a new GPT with parts in order, aligned to 1 MiB, tells the kernel about
// it, and returns the partition devices once they exist.
func Partition(ctx context.Context, disk string, parts []Part) ([]string, error) {
	args := []string{"--clear"}
	for i, p := range parts {
		n := i + 1
		end := "0"
		if p.SizeMiB > 0 {
			end = fmt.Sprintf("+%dM", p.SizeMiB)
		} else if i != len(parts)-1 {
			return nil, fmt.Errorf("partitioning %s: only the last partition can take the rest of the disk", disk)
		}
		args = append(args, fmt.Sprintf("--new=%d:0:%s", n, end), fmt.Sprintf("--typecode=%d:%s", n, p.Type),
			fmt.Sprintf("--change-name=%d:%s", n, p.Name))
	}
	args = append(args, disk)
	if _, err := run(ctx, "sgdisk", args...); err != nil {
		return nil, fmt.Errorf("partitioning %s: %w", disk, err)
	}
	// sgdisk asks the kernel to re-read the table, which it does for real disks only.
	if _, err := run(ctx, "partx", "--update", disk); err != nil {
		return nil, fmt.Errorf("partitioning %s: %w", disk, err)
	}
	devs := make([]string, len(parts))
	for i := range parts {
		devs[i] = PartitionDevice(disk, i+1)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, d := range devs {
		for CheckBlockDevice(d) != nil {
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("partitioning %s: partition device %s did not appear", disk, d)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return devs, nil
}

// Mkfs makes a filesystem of type fstype (ext4, xfs, btrfs or vfat) on dev, labelled label.
func Mkfs(ctx context.Context, dev, fstype, label string) error {
	var args []string
	name := "mkfs." + fstype
	switch fstype {
	case "ext4":
		args = []string{"-q", "-F", "-L", label, dev}
	case "xfs":
		args = []string{"-q", "-f", "-L", label, dev}
	case "btrfs":
		args = []string{"-q", "-f", "-L", label, dev}
	case "vfat":
		name, args = "mkfs.fat", []string{"-F", "32", "-n", label, dev}
	default:
		return fmt.Errorf("making a filesystem on %s: %w %q", dev, ErrUnknownFilesystem, fstype)
	}
	if _, err := run(ctx, name, args...); err != nil {
		return fmt.Errorf("making a filesystem on %s: %w", dev, err)
	}
	return nil
}

// UUID returns the filesystem UUID on dev, probing the device itself (no cache, no udev).
func UUID(ctx context.Context, dev string) (string, error) {
	out, err := run(ctx, "blkid", "--probe", "--match-tag", "UUID", "--output", "value", dev)
	if err != nil {
		return "", fmt.Errorf("reading the filesystem UUID of %s: %w", dev, err)
	}
	u := strings.TrimSpace(out)
	if u == "" {
		return "", fmt.Errorf("reading the filesystem UUID of %s: none found", dev)
	}
	return u, nil
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	MajMin  string // device number of the filesystem, "major:minor"
	Root    string // the directory of the filesystem mounted here ("/" unless a bind mount)
	Target  string
	FSType  string
	Source  string
	Options string // per-mount options
}

// ReadOnly reports the mount point's own read-only flag.
func (m Mount) ReadOnly() bool {
	for _, o := range strings.Split(m.Options, ",") {
		if o == "ro" {
			return true
		}
	}
	return false
}

// At returns the mount exactly at path (the last one, which shadows earlier ones there), or nil
// when path is not a mount point.
func At(path string) (*Mount, error) {
	mounts, err := Mounts()
	if err != nil {
		return nil, err
	}
	var found *Mount
	for i := range mounts {
		if mounts[i].Target == path {
			found = &mounts[i]
		}
	}
	return found, nil
}

// Mounts reads this process's mount table.
func Mounts() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	defer f.Close()
	var out []Mount
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(fields) < sep+3 {
			continue
		}
		out = append(out, Mount{
			MajMin: fields[2], Root: unescape(fields[3]), Target: unescape(fields[4]), Options: fields[5],
			FSType: fields[sep+1], Source: unescape(fields[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the mount table: %w", err)
	}
	return out, nil
}

// unescape decodes the octal escapes (\040 for a space) of mountinfo fields.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// MountOf returns the mount holding path: the last-mounted entry whose target is the longest
// prefix of path's real location.
func MountOf(path string) (Mount, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Mount{}, err
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	mounts, err := Mounts()
	if err != nil {
		return Mount{}, err
	}
	best := -1
	for i, m := range mounts {
		if m.Target == abs || m.Target == "/" || strings.HasPrefix(abs, m.Target+"/") {
			if best < 0 || len(m.Target) >= len(mounts[best].Target) {
				best = i
			}
		}
	}
	if best < 0 {
		return Mount{}, fmt.Errorf("no mount holds %s", abs)
	}
	return mounts[best], nil
}

// IsMountpoint reports whether path is itself the target of a mount.
func IsMountpoint(path string) (bool, error) {
	m, err := MountOf(path)
	if err != nil {
		return false, err
	}
	abs, _ := filepath.Abs(path)
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	return m.Target == abs, nil
}
