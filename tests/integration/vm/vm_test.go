package vm

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gobootc.dev/lib/envtest"
	"gobootc.dev/tests/integration/vm/qmp"
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
			notWant: []string{"bootindex", "pflash", "xhci", "sercon"},
		},
		{
			name: "bios with forwarding and USB",
			cfg: Config{Dir: dir, Boot: BootBIOS, Accel: "kvm", Memory: 2048, USB: true,
				GuestFwd: []string{"tcp:10.0.2.100:5000-cmd:busybox nc 127.0.0.1 5000"},
				Disks:    []Disk{{Path: "/a.qcow2", Format: "qcow2", Serial: "root"}, {Path: "/b.img"}}},
			want: []string{"-cpu host", "-m 2048", "-smp 2", "restrict=on,guestfwd=tcp:10.0.2.100:5000-cmd:busybox nc 127.0.0.1 5000",
				"format=qcow2", "drive=disk0,serial=root,bootindex=0", "virtio-blk-pci,drive=disk1 ",
				"-device qemu-xhci,id=xhci ", "-fw_cfg name=etc/sercon-port,file="},
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
			// Every boot has its monitor, in the short socket directory.
			qmpArg := "-qmp unix:" + filepath.Join(v.sockDir, "qmp.sock") + ",server=on,wait=off "
			if !strings.Contains(line, qmpArg) || len(v.qmpSocket()) > 100 {
				t.Errorf("command line lacks %q:\n%s", qmpArg, line)
			}
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
		envtest.Missing(t, "%v", err)
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

// sleepingQEMU starts a machine whose "QEMU" only sleeps, for tests of what the harness asks
// the monitor; the test serves the monitor socket itself.
func sleepingQEMU(t *testing.T, usb bool) *VM {
	t.Helper()
	dir := t.TempDir()
	fake := filepath.Join(dir, "fake-qemu")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nexec sleep 60\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{Dir: dir, QEMU: fake, Boot: BootBIOS, Disks: []Disk{{Path: "/d"}}, USB: usb})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	return v
}

// fakeMonitor serves the QMP protocol on the machine's monitor socket, recording every command
// after qmp_capabilities; answer gives the lines to send for one (an answer needs its id).
type fakeMonitor struct {
	mu       sync.Mutex
	commands []string // "execute arguments-json"
}

func serveMonitor(t *testing.T, v *VM, answer func(execute string, args map[string]any, id string) []string) *fakeMonitor {
	t.Helper()
	ln, err := net.Listen("unix", v.qmpSocket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f := &fakeMonitor{}
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		fmt.Fprintf(conn, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n")
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			var r struct {
				Execute   string          `json:"execute"`
				Arguments json.RawMessage `json:"arguments"`
				ID        string          `json:"id"`
			}
			json.Unmarshal(sc.Bytes(), &r)
			lines := []string{fmt.Sprintf(`{"return": {}, "id": %q}`, r.ID)}
			if r.Execute != "qmp_capabilities" {
				f.mu.Lock()
				f.commands = append(f.commands, r.Execute+" "+string(r.Arguments))
				f.mu.Unlock()
				var args map[string]any
				json.Unmarshal(r.Arguments, &args)
				lines = answer(r.Execute, args, r.ID)
			}
			for _, l := range lines {
				fmt.Fprintf(conn, "%s\r\n", l)
			}
		}
	}()
	return f
}

func (f *fakeMonitor) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.commands
	f.commands = nil
	return c
}

func TestUSBRefuses(t *testing.T) {
	ctx := t.Context()
	idle, err := New(Config{Dir: t.TempDir(), Boot: BootBIOS, Disks: []Disk{{Path: "/d"}}, USB: true})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if err := idle.AttachUSB(ctx, "stick", "/s.img", false); !errors.Is(err, ErrNotRunning) {
		t.Errorf("attach before Start: got %v, want ErrNotRunning", err)
	}
	if err := idle.DetachUSB(ctx, "stick"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("detach before Start: got %v, want ErrNotRunning", err)
	}
	if _, err := idle.QMP(ctx); !errors.Is(err, ErrNotRunning) {
		t.Errorf("QMP before Start: got %v, want ErrNotRunning", err)
	}

	noUSB := sleepingQEMU(t, false)
	if err := noUSB.AttachUSB(ctx, "stick", "/s.img", false); !errors.Is(err, ErrNoUSB) || !strings.Contains(err.Error(), `"stick"`) {
		t.Errorf("attach without a controller: got %v, want ErrNoUSB naming the stick", err)
	}
	if err := noUSB.DetachUSB(ctx, "stick"); !errors.Is(err, ErrNoUSB) {
		t.Errorf("detach without a controller: got %v, want ErrNoUSB", err)
	}
	noUSB.PowerCut()

	for _, tc := range []struct{ id, want string }{
		{"", "empty"},
		{"1stick", "does not start with a letter"},
		{"my stick", "has ' '"},
		{"stick,drive=x", "has ','"},
		{"a23456789012345678901234", "longer than 22"},
	} {
		if err := idle.AttachUSB(ctx, tc.id, "/s.img", false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("attach %q: got %v, want %q", tc.id, err, tc.want)
		}
		if err := idle.DetachUSB(ctx, tc.id); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("detach %q: got %v, want %q", tc.id, err, tc.want)
		}
	}
}

func TestUSBCommands(t *testing.T) {
	v := sleepingQEMU(t, true)
	var dels int
	mon := serveMonitor(t, v, func(execute string, args map[string]any, id string) []string {
		ok := fmt.Sprintf(`{"return": {}, "id": %q}`, id)
		deleted := fmt.Sprintf(`{"event": "DEVICE_DELETED", "data": {"device": %q, "path": "/machine/peripheral/x"}}`, args["id"])
		if execute != "device_del" {
			return []string{ok}
		}
		dels++
		switch {
		case args["id"] == "fast":
			// QEMU unplugs a USB device at once: the event comes before the answer.
			return []string{`{"event": "DEVICE_DELETED", "data": {"path": "/machine/peripheral/fast/child"}}`, deleted, ok}
		case dels == 2:
			return []string{ok} // the guest holds on to it
		default:
			// Gone meanwhile: the event, then the device is unknown.
			return []string{deleted, fmt.Sprintf(`{"error": {"class": "DeviceNotFound", "desc": "Device 'slow' not found"}, "id": %q}`, id)}
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()

	if err := v.AttachUSB(ctx, "fast", "/img/a b.img", false); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`blockdev-add {"driver":"raw","file":{"driver":"file","filename":"/img/a b.img","node-name":"usb-fast-file","read-only":false},"node-name":"usb-fast","read-only":false}`,
		`device_add {"bus":"xhci.0","drive":"usb-fast","driver":"usb-storage","id":"fast","removable":true}`,
	}
	if got := mon.take(); !slices.Equal(got, want) {
		t.Errorf("attach sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err := v.AttachUSB(ctx, "fast", "/img/other.img", true); err == nil || !strings.Contains(err.Error(), "already attached") {
		t.Errorf("second attach of fast: got %v, want already attached", err)
	}
	if got := mon.take(); len(got) != 0 {
		t.Errorf("second attach reached the monitor: %q", got)
	}
	if err := v.DetachUSB(ctx, "fast"); err != nil {
		t.Fatal(err)
	}
	want = []string{`device_del {"id":"fast"}`, `blockdev-del {"node-name":"usb-fast"}`}
	if got := mon.take(); !slices.Equal(got, want) {
		t.Errorf("detach sent %q, want %q", got, want)
	}

	if err := v.AttachUSB(ctx, "slow", "/img/b.img", true); err != nil {
		t.Fatal(err)
	}
	if got := mon.take(); len(got) != 2 || !strings.Contains(got[0], `"read-only":true`) {
		t.Errorf("read-only attach sent %q", got)
	}
	short, cancel2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel2()
	err := v.DetachUSB(short, "slow")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), `USB stick "slow": the device was not removed`) {
		t.Fatalf("detach the guest holds: got %v, want a deadline error", err)
	}
	if got := mon.take(); !slices.Equal(got, []string{`device_del {"id":"slow"}`}) {
		t.Errorf("image closed while the device may still be there: %q", got)
	}
	// It went away later: a second detach finds the event and closes the image.
	if err := v.DetachUSB(ctx, "slow"); err != nil {
		t.Fatalf("second detach: %v", err)
	}
	if got := mon.take(); len(got) != 2 || got[1] != `blockdev-del {"node-name":"usb-slow"}` {
		t.Errorf("second detach sent %q", got)
	}
	// Unknown to the harness and to QEMU: QEMU's error, naming the command.
	if err := v.DetachUSB(ctx, "never"); err == nil || !strings.Contains(err.Error(), "device_del: Device 'slow' not found") {
		t.Errorf("detach of a stick never attached: got %v", err)
	}
}

// realQEMU starts the harness's QEMU paused (-S) on a 64 MiB machine with the xHCI
// controller: the firmware never runs, but the monitor works.
func realQEMU(t *testing.T) (*VM, string) {
	t.Helper()
	envtest.NeedTool(t, "qemu-system-x86_64")
	envtest.NeedRoot(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.img")
	if err := exec.Command("truncate", "-s", "1M", disk).Run(); err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{Dir: dir, Boot: BootBIOS, Accel: "tcg", Memory: 64, Disks: []Disk{{Path: disk}},
		USB: true, Extra: []string{"-S"}, Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	if err := v.Start(); err != nil {
		t.Fatal(err)
	}
	return v, dir
}

func stickImage(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if out, err := exec.Command("truncate", "-s", "16M", p).CombinedOutput(); err != nil {
		t.Fatalf("truncate: %v: %s", err, out)
	}
	return p
}

// usbState is what the running QEMU shows of the sticks: devices under /machine/peripheral,
// the "info usb" lines and the named block nodes (node name → file, read-only).
type usbState struct {
	devices []string
	infoUSB string
	nodes   map[string]string
}

func queryUSB(t *testing.T, ctx context.Context, m *qmp.Client) usbState {
	t.Helper()
	var st usbState
	ret, err := m.Execute(ctx, "qom-list", map[string]any{"path": "/machine/peripheral"})
	if err != nil {
		t.Fatal(err)
	}
	var props []struct{ Name, Type string }
	json.Unmarshal(ret, &props)
	for _, p := range props {
		if p.Type == "child<usb-storage>" {
			st.devices = append(st.devices, p.Name)
		}
	}
	slices.Sort(st.devices)
	ret, err = m.Execute(ctx, "human-monitor-command", map[string]any{"command-line": "info usb"})
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(ret, &st.infoUSB)
	ret, err = m.Execute(ctx, "query-named-block-nodes", nil)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []struct {
		NodeName string `json:"node-name"`
		File     string `json:"file"`
		RO       bool   `json:"ro"`
	}
	json.Unmarshal(ret, &nodes)
	st.nodes = map[string]string{}
	for _, n := range nodes {
		if strings.HasPrefix(n.NodeName, "usb-") {
			st.nodes[n.NodeName] = fmt.Sprintf("%s ro=%v", n.File, n.RO)
		}
	}
	return st
}

func TestUSBRealQEMU(t *testing.T) {
	v, dir := realQEMU(t)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	m, err := v.QMP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ret, err := m.Execute(ctx, "query-status", nil)
	if err != nil || !strings.Contains(string(ret), `"prelaunch"`) {
		t.Fatalf("query-status: %s %v; want a machine that never ran", ret, err)
	}

	one, two := stickImage(t, dir, "one.img"), stickImage(t, dir, "two.img")
	if err := v.AttachUSB(ctx, "one", one, false); err != nil {
		t.Fatal(err)
	}
	if err := v.AttachUSB(ctx, "two", two, true); err != nil {
		t.Fatal(err)
	}
	st := queryUSB(t, ctx, m)
	if !slices.Equal(st.devices, []string{"one", "two"}) {
		t.Errorf("usb-storage devices %q, want one and two", st.devices)
	}
	if !strings.Contains(st.infoUSB, "ID: one") || !strings.Contains(st.infoUSB, "ID: two") {
		t.Errorf("info usb:\n%s", st.infoUSB)
	}
	wantNodes := map[string]string{
		"usb-one": one + " ro=false", "usb-one-file": one + " ro=false",
		"usb-two": two + " ro=true", "usb-two-file": two + " ro=true",
	}
	if !maps.Equal(st.nodes, wantNodes) {
		t.Errorf("block nodes %v, want %v", st.nodes, wantNodes)
	}

	if err := v.AttachUSB(ctx, "one", two, false); err == nil || !strings.Contains(err.Error(), `"one"`) || !strings.Contains(err.Error(), "already attached") {
		t.Errorf("second attach of one: got %v", err)
	}
	missing := filepath.Join(dir, "missing.img")
	if err := v.AttachUSB(ctx, "ghost", missing, false); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("attach of a missing image: got %v, want an error naming it", err)
	} else {
		t.Logf("missing image: %v", err)
	}
	// QEMU refuses the device (its id is the controller's); the image is closed again.
	if err := v.AttachUSB(ctx, "xhci", stickImage(t, dir, "three.img"), false); err == nil || !strings.Contains(err.Error(), "device_add") {
		t.Errorf("attach with the controller's id: got %v, want QEMU's device_add error", err)
	} else {
		t.Logf("clashing id: %v", err)
	}
	if st := queryUSB(t, ctx, m); !maps.Equal(st.nodes, wantNodes) || len(st.devices) != 2 {
		t.Errorf("failed attaches left devices %q, nodes %v", st.devices, st.nodes)
	}

	// QEMU removes a USB device without asking the guest, so even a machine that never ran
	// completes the unplug (DEVICE_DELETED) and the image can be closed.
	if err := v.DetachUSB(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	st = queryUSB(t, ctx, m)
	delete(wantNodes, "usb-one")
	delete(wantNodes, "usb-one-file")
	if !slices.Equal(st.devices, []string{"two"}) || strings.Contains(st.infoUSB, "ID: one") || !maps.Equal(st.nodes, wantNodes) {
		t.Errorf("after detaching one: devices %q, nodes %v, info usb:\n%s", st.devices, st.nodes, st.infoUSB)
	}
	if err := v.DetachUSB(ctx, "ghost"); err == nil || !strings.Contains(err.Error(), "device_del: Device 'ghost' not found") {
		t.Errorf("detach of a stick never attached: got %v", err)
	}
	// The id and the image (whose lock QEMU held) are free again.
	if err := v.AttachUSB(ctx, "one", one, false); err != nil {
		t.Fatalf("attach after detach: %v", err)
	}
	for _, id := range []string{"one", "two"} {
		if err := v.DetachUSB(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if st := queryUSB(t, ctx, m); len(st.devices) != 0 || len(st.nodes) != 0 || strings.Contains(st.infoUSB, "ID:") {
		t.Errorf("left after detaching all: devices %q, nodes %v, info usb:\n%s", st.devices, st.nodes, st.infoUSB)
	}
	if ret, err := m.Execute(ctx, "query-status", nil); err != nil || !strings.Contains(string(ret), `"prelaunch"`) {
		t.Errorf("query-status at the end: %s %v; the machine must never have run", ret, err)
	}
}
