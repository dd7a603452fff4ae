package blockdev

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/envtest"
)

func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	envtest.NeedRoot(t)
	envtest.NeedTool(t, append([]string{"losetup", "partx", "sgdisk", "wipefs", "blkid"}, tools...)...)
}

// sparse makes an image file of the given size in MiB.
func sparse(t *testing.T, mib int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(mib << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func attached(t *testing.T, file string) string {
	t.Helper()
	out, err := exec.Command("losetup", "--associated", file).CombinedOutput()
	if err != nil {
		t.Fatalf("losetup -j: %v: %s", err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestLoopPartitionMkfs(t *testing.T) {
	needRoot(t, "mkfs.ext4", "mkfs.fat")
	ctx := context.Background()
	img := sparse(t, 200)
	l, err := AttachLoop(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Detach(); err != nil {
			t.Error(err)
		}
		if a := attached(t, img); a != "" {
			t.Errorf("still attached: %s", a)
		}
	}()
	if err := CheckBlockDevice(l.Device); err != nil {
		t.Fatal(err)
	}
	if err := CheckUnused(ctx, l.Device); err != nil {
		t.Fatalf("fresh device refused: %v", err)
	}
	devs, err := Partition(ctx, l.Device, []Part{{SizeMiB: 1, Type: "EF02", Name: "BIOS-BOOT"}, {SizeMiB: 64, Type: "EF00", Name: "EFI-SYSTEM"}, {Type: "8304", Name: "root"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := Partitions(l.Device); strings.Join(got, " ") != strings.Join(devs, " ") || len(got) != 3 {
		t.Errorf("partitions %v, created %v", got, devs)
	}
	if d, err := Disk(devs[2]); err != nil || d != l.Device {
		t.Errorf("Disk(%s) = %s, %v", devs[2], d, err)
	}
	if err := Mkfs(ctx, devs[1], "vfat", "EFI-SYSTEM"); err != nil {
		t.Fatal(err)
	}
	if err := Mkfs(ctx, devs[2], "ext4", "root"); err != nil {
		t.Fatal(err)
	}
	u, err := UUID(ctx, devs[2])
	if err != nil || len(u) != 36 {
		t.Errorf("UUID = %q, %v", u, err)
	}
	if err := Mkfs(ctx, devs[2], "ntfs", "root"); !errors.Is(err, ErrUnknownFilesystem) {
		t.Errorf("ntfs: %v", err)
	}
	if err := CheckUnused(ctx, l.Device); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "has partitions") {
		t.Errorf("partitioned device accepted: %v", err)
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", devs[2], mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v: %s", err, out)
	}
	if ok, err := IsMountpoint(mnt); !ok || err != nil {
		t.Errorf("IsMountpoint = %v, %v", ok, err)
	}
	if m, err := MountOf(filepath.Join(mnt, "lost+found")); err != nil || m.Source != devs[2] || m.FSType != "ext4" {
		t.Errorf("MountOf = %+v, %v", m, err)
	}
	if err := Wipe(ctx, l.Device); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "mounted at") {
		t.Errorf("wiping a mounted device: %v", err)
	}
	exec.Command("umount", mnt).Run()
	if err := Wipe(ctx, l.Device); err != nil {
		t.Fatal(err)
	}
	if err := CheckUnused(ctx, l.Device); err != nil {
		t.Errorf("wiped device refused: %v", err)
	}
}

func TestBadInputs(t *testing.T) {
	if err := CheckBlockDevice("/dev/null"); !errors.Is(err, ErrNotBlockDevice) {
		t.Errorf("/dev/null: %v", err)
	}
	if err := CheckBlockDevice("/nonexistent"); err == nil || !strings.Contains(err.Error(), "/nonexistent") {
		t.Errorf("missing: %v", err)
	}
	if _, err := AttachLoop(context.Background(), t.TempDir()); err == nil {
		t.Error("attached a directory")
	}
	for disk, want := range map[string]string{"/dev/loop3": "/dev/loop3p2", "/dev/sda": "/dev/sda2", "/dev/nvme0n1": "/dev/nvme0n1p2"} {
		if got := PartitionDevice(disk, 2); got != want {
			t.Errorf("PartitionDevice(%s) = %s", disk, got)
		}
	}
}
