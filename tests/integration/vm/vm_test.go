package vm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestArgs(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		cfg     Config
		want    []string
		notWant []string
	}{
		{
			name: "direct kernel",
			cfg: Config{Dir: dir, Kernel: "/k", Initrd: "/i", Append: "root=/dev/vda rw", Accel: "tcg",
				Disks: []Disk{{Path: "/d.img"}}},
			want: []string{"-no-reboot", "q35,accel=tcg", "-cpu max", "-m 1536", "-smp 1", "-kernel /k", "-initrd /i",
				"-append root=/dev/vda rw", "file=/d.img,format=raw,if=none,id=disk0", "user,id=net0,restrict=on",
				"name=org.qemu.guest_agent.0", "file,id=serial0,path=" + dir + "/serial.log"},
			notWant: []string{"bootindex", "pflash"},
		},
		{
			name: "bios with forwarding",
			cfg: Config{Dir: dir, Boot: BootBIOS, Accel: "kvm", Memory: 2048,
				GuestFwd: []string{"tcp:10.0.2.100:5000-cmd:busybox nc 127.0.0.1 5000"},
				Disks:    []Disk{{Path: "/a.qcow2", Format: "qcow2", Serial: "root"}, {Path: "/b.img"}}},
			want: []string{"-cpu host", "-m 2048", "-smp 2", "restrict=on,guestfwd=tcp:10.0.2.100:5000-cmd:busybox nc 127.0.0.1 5000",
				"format=qcow2", "drive=disk0,serial=root,bootindex=0", "virtio-blk-pci,drive=disk1 "},
			notWant: []string{"-kernel", "pflash"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			args, err := v.Args(filepath.Join(dir, "serial.log"))
			if err != nil {
				t.Fatal(err)
			}
			line := strings.Join(args, " ") + " "
			for _, w := range tc.want {
				if !strings.Contains(line, w) {
					t.Errorf("command line lacks %q:\n%s", w, line)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(line, w) {
					t.Errorf("command line has %q:\n%s", w, line)
				}
			}
		})
	}
}

func TestArgsUEFI(t *testing.T) {
	if _, _, err := FindOVMF(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	v, err := New(Config{Dir: dir, Boot: BootUEFI, Disks: []Disk{{Path: "/d.img"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	args, err := v.Args(filepath.Join(dir, "serial.log"))
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ")
	if !strings.Contains(line, "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/") ||
		!strings.Contains(line, "unit=1,file="+dir+"/OVMF_VARS.fd") {
		t.Errorf("no OVMF flash drives: %s", line)
	}
	if fi, err := os.Stat(filepath.Join(dir, "OVMF_VARS.fd")); err != nil || fi.Size() == 0 {
		t.Errorf("variable store not copied: %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, c := range []Config{
		{Disks: []Disk{{Path: "/d"}}, Kernel: "/k", Initrd: "/i"},
		{Dir: "/tmp", Disks: []Disk{{Path: "/d"}}},
		{Dir: "/tmp", Kernel: "/k", Initrd: "/i"},
	} {
		if v, err := New(c); err == nil {
			v.Close()
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

func TestStartReportsEarlyExit(t *testing.T) {
	dir := t.TempDir()
	// A "QEMU" that prints to the console log and ends at once, as a crashing guest would.
	fake := filepath.Join(dir, "fake-qemu")
	os.WriteFile(fake, []byte("#!/bin/sh\nfor a; do case $a in file,id=serial0,path=*) echo 'Kernel panic - not syncing' >\"${a#file,id=serial0,path=}\";; esac; done\nexit 1\n"), 0o755)
	v, err := New(Config{Dir: dir, QEMU: fake, Kernel: "/k", Initrd: "/i", Disks: []Disk{{Path: "/d"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	err = v.WaitBoot(t.Context(), 0)
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "Kernel panic") {
		t.Fatalf("got %v, want ErrExited with the console tail", err)
	}
	// The slot is free again for the next machine.
	if err := v.Start(); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if err := v.WaitBoot(t.Context(), 0); !errors.Is(err, ErrExited) {
		t.Fatalf("second boot: got %v, want ErrExited", err)
	}
	if v.SerialLog() != filepath.Join(dir, "serial-2.log") {
		t.Errorf("boot 2 logs to %s", v.SerialLog())
	}
	if _, err := os.Stat(filepath.Join(dir, "serial-2.log")); err != nil {
		t.Errorf("no log for boot 2: %v", err)
	}
}
