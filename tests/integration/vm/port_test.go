package vm

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/envtest"
)

// fakeWithPort starts a "QEMU" that runs script, with one port named "signal" whose socket the
// test serves itself.
func fakeWithPort(t *testing.T, script string) *VM {
	t.Helper()
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-qemu")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{Dir: dir, QEMU: fake, Boot: BootBIOS, Disks: []Disk{{Path: "/d"}}, Ports: []string{"signal"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	return v
}

// servePort accepts one connection on the port's socket and writes text to it after delay.
func servePort(t *testing.T, v *VM, delay time.Duration, text string) {
	t.Helper()
	ln, err := net.Listen("unix", v.portSocket(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		time.Sleep(delay)
		conn.Write([]byte(text))
		// Keep the connection open, as QEMU does; the reader closes it.
		buf := make([]byte, 1)
		conn.Read(buf)
		conn.Close()
	}()
}

func TestPortArgs(t *testing.T) {
	v, err := New(Config{Dir: t.TempDir(), Boot: BootBIOS, Disks: []Disk{{Path: "/d"}}, Ports: []string{"org.example.one", "two"}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	args, err := v.Args("/serial.log")
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Join(args, " ") + " "
	for _, want := range []string{
		"-chardev socket,id=port0,path=" + filepath.Join(v.sockDir, "port0.sock") + ",server=on,wait=off ",
		"-device virtserialport,chardev=port0,name=org.example.one ",
		"-chardev socket,id=port1,path=" + filepath.Join(v.sockDir, "port1.sock") + ",server=on,wait=off ",
		"-device virtserialport,chardev=port1,name=two ",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("command line lacks %q:\n%s", want, line)
		}
	}
	// The ports share the controller the guest agent's port is on.
	if strings.Count(line, "-device virtio-serial-pci ") != 1 {
		t.Errorf("want one virtio-serial controller:\n%s", line)
	}
}

func TestReadLine(t *testing.T) {
	ctx := t.Context()
	t.Run("a line written later", func(t *testing.T) {
		v := fakeWithPort(t, "exec sleep 60")
		servePort(t, v, 300*time.Millisecond, "finalize:entries\nrest")
		got, err := v.ReadLine(ctx, "signal", 30*time.Second)
		if err != nil || got != "finalize:entries" {
			t.Fatalf("ReadLine = %q, %v; want finalize:entries", got, err)
		}
	})
	t.Run("nothing written", func(t *testing.T) {
		v := fakeWithPort(t, "exec sleep 60")
		servePort(t, v, time.Hour, "")
		start := time.Now()
		_, err := v.ReadLine(ctx, "signal", 500*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "deadline exceeded") || time.Since(start) > 10*time.Second {
			t.Fatalf("ReadLine = %v after %s; want a timeout after 500ms", err, time.Since(start))
		}
	})
	t.Run("qemu ends", func(t *testing.T) {
		v := fakeWithPort(t, "for a; do case $a in file,id=serial0,path=*) echo 'reboot: Restarting system' >\"${a#file,id=serial0,path=}\";; esac; done\nsleep 1")
		servePort(t, v, time.Hour, "")
		_, err := v.ReadLine(ctx, "signal", 30*time.Second)
		if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "Restarting system") {
			t.Fatalf("ReadLine = %v; want ErrExited with the console tail", err)
		}
	})
	t.Run("no such port", func(t *testing.T) {
		v := fakeWithPort(t, "exec sleep 60")
		if _, err := v.ReadLine(ctx, "other", time.Second); err == nil || !strings.Contains(err.Error(), `no port "other"`) {
			t.Fatalf("ReadLine of an unknown port = %v", err)
		}
		v.PowerCut()
		if _, err := v.ReadLine(ctx, "signal", time.Second); !errors.Is(err, ErrNotRunning) {
			t.Fatalf("ReadLine after the power cut = %v, want ErrNotRunning", err)
		}
	})
}

// TestPortRealQEMU checks that QEMU takes the port's arguments and serves its socket: the
// machine never runs (-S), so the read times out on an open connection.
func TestPortRealQEMU(t *testing.T) {
	envtest.NeedTool(t, "qemu-system-x86_64")
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := exec.Command("truncate", "-s", "1M", disk).Run(); err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{Dir: dir, Boot: BootBIOS, Accel: "tcg", Memory: 64, Disks: []Disk{{Path: disk}},
		Ports: []string{"org.example.signal"}, Extra: []string{"-S"}, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	_, err = v.ReadLine(t.Context(), "org.example.signal", 3*time.Second)
	if err == nil || errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "deadline exceeded") ||
		strings.Contains(err.Error(), "connecting") {
		stderr, _ := os.ReadFile(filepath.Join(dir, "qemu-1.stderr"))
		t.Fatalf("ReadLine on a paused machine = %v; want a timeout on a connected port\nqemu: %s", err, stderr)
	}
}
