// Package vm runs one QEMU virtual machine at a time for the integration tests: direct kernel,
// SeaBIOS or OVMF boot, the serial console of every boot kept in a log file (under SeaBIOS with
// the boot loader's screen in it), a network that reaches nothing, the guest agent to run
// commands in the guest, and a QMP monitor through which a test can plug USB sticks in and out
// of the running machine (Config.USB, AttachUSB), and virtio-serial ports through which the
// guest signals the host (Config.Ports, ReadLine).
//
// Every boot is its own QEMU process (-no-reboot: a guest reboot ends QEMU), so each boot has
// its own serial log (serial-1.log, serial-2.log, … in Config.Dir) and a test may change how the
// next boot starts.
package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gobootc.dev/tests/integration/qga"
	"gobootc.dev/tests/integration/vm/qmp"
)

// Boot selects the firmware path.
type Boot int

const (
	// BootKernel loads Config.Kernel and Config.Initrd directly (-kernel/-initrd/-append).
	BootKernel Boot = iota
	// BootBIOS boots the first disk through SeaBIOS.
	BootBIOS
	// BootUEFI boots the first disk through OVMF, with a private copy of the variable store.
	BootUEFI
)

// Timeouts sized for TCG, which runs a guest some tens of times slower than KVM.
const (
	DefaultBootTimeout     = 8 * time.Minute
	DefaultShutdownTimeout = 3 * time.Minute
	DefaultCommandTimeout  = 3 * time.Minute
)

var (
	// ErrExited means QEMU ended (guest power-off, reboot or crash) while the harness waited
	// for something else.
	ErrExited = errors.New("qemu exited")
	// ErrEmergency means the guest stopped in emergency or rescue mode.
	ErrEmergency = errors.New("guest entered emergency mode")
	// ErrRunning means a machine is already running: one at a time.
	ErrRunning = errors.New("a virtual machine is already running")
	// ErrNotRunning means the operation needs a running QEMU.
	ErrNotRunning = errors.New("the virtual machine is not running")
	// ErrNoUSB means the running boot has no USB controller to plug a stick into (Config.USB).
	ErrNoUSB = errors.New("the virtual machine has no USB controller (Config.USB)")
)

// Disk is one virtio disk.
type Disk struct {
	Path   string
	Format string // "raw" (default) or "qcow2"
	Serial string // shows as /dev/disk/by-id/virtio-<serial>
}

// Config describes the machine. Zero values get the defaults noted.
type Config struct {
	Dir    string // artifacts: serial logs and the QEMU command lines; must exist
	Memory int    // MiB, default 1536
	CPUs   int    // default 1 under TCG, 2 under KVM
	Accel  string // default $BOOTC_VM_ACCEL, else "tcg"
	Boot   Boot
	Kernel string // BootKernel
	Initrd string // BootKernel
	Append string // BootKernel: the kernel command line
	Disks  []Disk
	USB    bool // an xHCI controller, so AttachUSB can plug sticks into the running guest
	// Ports are virtio-serial ports the guest writes to, by name: each shows in the guest as
	// /dev/virtio-ports/<name>, and ReadLine waits for a line from it.
	Ports []string
	// GuestFwd are user-network guestfwd rules. Use a command per connection
	// ("tcp:10.0.2.100:5000-cmd:busybox nc 127.0.0.1 5000"): a chardev target
	// ("…-tcp:127.0.0.1:5000") is connected once per QEMU run and carries a single connection.
	GuestFwd []string
	Extra    []string // more QEMU arguments
	QEMU     string   // default qemu-system-x86_64
	Log      func(format string, args ...any)
}

// VM is one machine; Start begins a boot, Stop or PowerCut ends it.
type VM struct {
	cfg      Config
	sockDir  string
	boots    int
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	agent    *qga.Client
	monitor  *qmp.Client
	usb      bool            // this boot has the xHCI controller
	ports    []string        // this boot's virtio-serial ports (Config.Ports)
	sticks   map[string]bool // USB sticks attached in this boot, by device id
	serial   string
	ovmfVars string
}

var running sync.Mutex

// New checks the configuration; nothing runs yet.
func New(cfg Config) (*VM, error) {
	if cfg.Dir == "" {
		return nil, errors.New("vm: Config.Dir (the artifacts directory) is required")
	}
	if cfg.Memory == 0 {
		cfg.Memory = 1536
	}
	if cfg.Accel == "" {
		cfg.Accel = os.Getenv("BOOTC_VM_ACCEL")
	}
	if cfg.Accel == "" {
		cfg.Accel = "tcg"
	}
	if cfg.CPUs == 0 {
		// Multi-threaded TCG with several vCPUs crashes the guest kernel now and then while it
		// patches its own code (an int3 oops in the scheduler); one vCPU is also barely slower.
		cfg.CPUs = 1
		if cfg.Accel == "kvm" {
			cfg.CPUs = 2
		}
	}
	if cfg.QEMU == "" {
		cfg.QEMU = "qemu-system-x86_64"
	}
	if cfg.Log == nil {
		cfg.Log = func(string, ...any) {}
	}
	if cfg.Boot == BootKernel && (cfg.Kernel == "" || cfg.Initrd == "") {
		return nil, errors.New("vm: direct kernel boot needs Config.Kernel and Config.Initrd")
	}
	if len(cfg.Disks) == 0 {
		return nil, errors.New("vm: no disks")
	}
	// Unix socket paths are limited to 108 bytes; artifact directories can be deeper.
	sockDir, err := os.MkdirTemp("", "vm")
	if err != nil {
		return nil, err
	}
	return &VM{cfg: cfg, sockDir: sockDir}, nil
}

// Config returns the configuration, so a test can change the next boot (SetConfig).
func (v *VM) Config() Config { return v.cfg }

// SetConfig replaces the configuration for the next Start.
func (v *VM) SetConfig(c Config) { v.cfg = c }

// Boots is how many times the machine was started.
func (v *VM) Boots() int { return v.boots }

// SerialLog is the console log of the current (or last) boot.
func (v *VM) SerialLog() string { return v.serial }

func (v *VM) agentSocket() string { return filepath.Join(v.sockDir, "qga.sock") }

func (v *VM) qmpSocket() string { return filepath.Join(v.sockDir, "qmp.sock") }

// Args returns the QEMU command line for the next boot with the given serial log.
func (v *VM) Args(serialLog string) ([]string, error) {
	c := v.cfg
	args := []string{
		"-nodefaults", "-display", "none", "-no-reboot",
		"-machine", "q35,accel=" + c.Accel,
		"-m", strconv.Itoa(c.Memory), "-smp", strconv.Itoa(c.CPUs),
		"-chardev", "file,id=serial0,path=" + serialLog,
		"-serial", "chardev:serial0",
		"-chardev", "socket,id=qga0,path=" + v.agentSocket() + ",server=on,wait=off",
		"-device", "virtio-serial-pci",
		"-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
		"-device", "virtio-rng-pci",
		"-qmp", "unix:" + v.qmpSocket() + ",server=on,wait=off",
	}
	for i, name := range c.Ports {
		id := fmt.Sprintf("port%d", i)
		args = append(args,
			"-chardev", "socket,id="+id+",path="+v.portSocket(i)+",server=on,wait=off",
			"-device", "virtserialport,chardev="+id+",name="+name)
	}
	if c.Accel == "kvm" {
		args = append(args, "-cpu", "host")
	} else {
		args = append(args, "-cpu", "max")
	}
	netdev := "user,id=net0,restrict=on"
	for _, f := range c.GuestFwd {
		netdev += ",guestfwd=" + f
	}
	args = append(args, "-netdev", netdev, "-device", "virtio-net-pci,netdev=net0")
	if c.USB {
		args = append(args, "-device", "qemu-xhci,id=xhci")
	}
	for i, d := range c.Disks {
		format := d.Format
		if format == "" {
			format = "raw"
		}
		drive := fmt.Sprintf("file=%s,format=%s,if=none,id=disk%d,cache=writeback,discard=unmap", d.Path, format, i)
		dev := fmt.Sprintf("virtio-blk-pci,drive=disk%d", i)
		if d.Serial != "" {
			dev += ",serial=" + d.Serial
		}
		if i == 0 && c.Boot != BootKernel {
			dev += ",bootindex=0"
		}
		args = append(args, "-drive", drive, "-device", dev)
	}
	switch c.Boot {
	case BootKernel:
		args = append(args, "-kernel", c.Kernel, "-initrd", c.Initrd, "-append", c.Append)
	case BootBIOS:
		// SeaBIOS's serial console: what the boot loader prints through the BIOS (GRUB's menu,
		// the entry it boots, its errors) reaches the serial log too. SeaBIOS reads the port
		// from this file as a little-endian number: 0x3f8, the first serial port.
		sercon := filepath.Join(v.sockDir, "sercon-port")
		if err := os.WriteFile(sercon, []byte{0xf8, 0x03}, 0o644); err != nil {
			return nil, err
		}
		args = append(args, "-fw_cfg", "name=etc/sercon-port,file="+sercon)
	case BootUEFI:
		code, vars, err := FindOVMF()
		if err != nil {
			return nil, err
		}
		if v.ovmfVars == "" {
			v.ovmfVars = filepath.Join(c.Dir, "OVMF_VARS.fd")
			if err := copyFile(vars, v.ovmfVars); err != nil {
				return nil, err
			}
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+v.ovmfVars)
	default:
		return nil, fmt.Errorf("vm: unknown boot mode %d", c.Boot)
	}
	return append(args, c.Extra...), nil
}

// FindOVMF returns the OVMF code and variable-store images from Debian's ovmf package (the
// 4 MiB builds, without Secure Boot).
func FindOVMF() (code, vars string, err error) {
	for _, pair := range [][2]string{
		{"/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"},
		{"/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"},
	} {
		if _, err := os.Stat(pair[0]); err == nil {
			if _, err := os.Stat(pair[1]); err == nil {
				return pair[0], pair[1], nil
			}
		}
	}
	return "", "", errors.New("OVMF firmware not found under /usr/share/OVMF (apt-get install ovmf)")
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, in)
	return errors.Join(cerr, out.Close())
}

// Start begins the next boot. It returns once QEMU runs; WaitBoot waits for the guest.
func (v *VM) Start() error {
	if v.cmd != nil && !v.Running() {
		v.reap()
	}
	if v.cmd != nil {
		return ErrRunning
	}
	if !running.TryLock() {
		return ErrRunning
	}
	v.boots++
	v.serial = filepath.Join(v.cfg.Dir, fmt.Sprintf("serial-%d.log", v.boots))
	args, err := v.Args(v.serial)
	if err != nil {
		running.Unlock()
		return err
	}
	os.Remove(v.agentSocket())
	os.Remove(v.qmpSocket())
	for i := range v.cfg.Ports {
		os.Remove(v.portSocket(i))
	}
	cmdline := v.cfg.QEMU + " " + strings.Join(args, " ") + "\n"
	os.WriteFile(filepath.Join(v.cfg.Dir, fmt.Sprintf("qemu-%d.cmdline", v.boots)), []byte(cmdline), 0o644)
	stderr, err := os.Create(filepath.Join(v.cfg.Dir, fmt.Sprintf("qemu-%d.stderr", v.boots)))
	if err != nil {
		running.Unlock()
		return err
	}
	cmd := exec.Command(v.cfg.QEMU, args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	// Its own process group: a test's interrupt should reach the harness, which kills QEMU.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		stderr.Close()
		running.Unlock()
		return fmt.Errorf("starting qemu: %w", err)
	}
	v.cmd = cmd
	v.usb = v.cfg.USB
	v.ports = v.cfg.Ports
	v.sticks = map[string]bool{}
	v.done = make(chan struct{})
	go func() {
		v.waitErr = cmd.Wait()
		stderr.Close()
		close(v.done)
	}()
	v.cfg.Log("vm: boot %d started (pid %d, accel %s), serial log %s", v.boots, cmd.Process.Pid, v.cfg.Accel, v.serial)
	return nil
}

// Running reports whether QEMU is running.
func (v *VM) Running() bool {
	if v.cmd == nil {
		return false
	}
	select {
	case <-v.done:
		return false
	default:
		return true
	}
}

// reap forgets a QEMU that has ended.
func (v *VM) reap() {
	if v.cmd == nil {
		return
	}
	<-v.done
	v.cmd = nil
	if v.agent != nil {
		v.agent.Close()
		v.agent = nil
	}
	if v.monitor != nil {
		v.monitor.Close()
		v.monitor = nil
	}
	v.sticks = nil
	running.Unlock()
}

// exitError describes how QEMU ended, with the end of the console log.
func (v *VM) exitError() error {
	return fmt.Errorf("%w (%v); console log %s ends:\n%s", ErrExited, v.waitErr, v.serial, v.SerialTail(40))
}

// SerialTail returns the last n lines of the current serial log.
func (v *VM) SerialTail(n int) string {
	data, _ := os.ReadFile(v.serial)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// emergencyMarkers are what systemd prints when a boot stops short of the system.
var emergencyMarkers = []string{"You are in emergency mode", "You are in rescue mode", "Cannot open access to console, the root account is locked"}

// WaitBoot waits until the guest agent answers, failing early if QEMU ends or the console shows
// emergency mode.
func (v *VM) WaitBoot(ctx context.Context, timeout time.Duration) error {
	if timeout == 0 {
		timeout = DefaultBootTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	for {
		if !v.Running() {
			err := v.exitError()
			v.reap()
			return err
		}
		data, _ := os.ReadFile(v.serial)
		for _, m := range emergencyMarkers {
			if strings.Contains(string(data), m) {
				return fmt.Errorf("%w (%q on the console); console log %s ends:\n%s", ErrEmergency, m, v.serial, v.SerialTail(60))
			}
		}
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := qga.Dial(actx, v.agentSocket())
		if err == nil {
			err = c.Ping(actx)
		}
		acancel()
		if err == nil {
			v.agent = c
			v.cfg.Log("vm: boot %d: guest agent answered after %s", v.boots, time.Since(start).Round(time.Second))
			return nil
		}
		if c != nil {
			c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for boot %d (guest agent): %w; console log %s ends:\n%s", v.boots, ctx.Err(), v.serial, v.SerialTail(40))
		case <-v.done:
		case <-time.After(2 * time.Second):
		}
	}
}

// Exec runs a command in the guest and returns its full result. It waits until ctx's deadline,
// or DefaultCommandTimeout when ctx has none.
func (v *VM) Exec(ctx context.Context, stdin []byte, name string, args ...string) (*qga.Result, error) {
	if v.agent == nil {
		return nil, errors.New("vm: the guest is not booted (call WaitBoot)")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCommandTimeout)
		defer cancel()
	}
	r, err := v.agent.Exec(ctx, name, args, stdin)
	if err != nil {
		return nil, fmt.Errorf("running %s in the guest: %w", name, err)
	}
	return r, nil
}

// Run runs a command in the guest and returns its standard output and exit code; standard
// error goes to the log.
func (v *VM) Run(ctx context.Context, name string, args ...string) (stdout string, code int, err error) {
	r, err := v.Exec(ctx, nil, name, args...)
	if err != nil {
		return "", -1, err
	}
	if len(r.Stderr) > 0 {
		v.cfg.Log("vm: %s %s: stderr: %s", name, strings.Join(args, " "), strings.TrimSpace(string(r.Stderr)))
	}
	return string(r.Stdout), r.ExitCode, nil
}

// Shell runs a /bin/sh script in the guest.
func (v *VM) Shell(ctx context.Context, script string) (*qga.Result, error) {
	return v.Exec(ctx, nil, "/bin/sh", "-c", script)
}

// WaitExit waits up to timeout (0: DefaultShutdownTimeout) for QEMU to end by itself, as it
// does when the guest powers off or reboots on its own, and forgets it; then Start begins the
// next boot.
func (v *VM) WaitExit(ctx context.Context, timeout time.Duration) error {
	if timeout == 0 {
		timeout = DefaultShutdownTimeout
	}
	select {
	case <-v.done:
		v.reap()
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("the guest did not stop within %s; console log %s ends:\n%s", timeout, v.serial, v.SerialTail(30))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Reboot asks the guest to reboot cleanly (so shutdown units run), waits for this boot to end
// and starts the next one; call WaitBoot after it.
func (v *VM) Reboot(ctx context.Context) error {
	if err := v.Shutdown(ctx, "reboot"); err != nil {
		return err
	}
	return v.Start()
}

// Shutdown asks the guest to "powerdown" or "reboot" and waits for QEMU to end.
func (v *VM) Shutdown(ctx context.Context, mode string) error {
	if err := v.RequestShutdown(ctx, mode); err != nil {
		return err
	}
	return v.WaitExit(ctx, 0)
}

// RequestShutdown asks the guest to "powerdown" or "reboot" and returns at once, so the caller
// can watch the shutdown (or cut it short with PowerCut). The agent gives no answer to wait
// for: running a reboot command through Exec instead can hang until QEMU ends, when the agent
// is stopped before it answers.
func (v *VM) RequestShutdown(ctx context.Context, mode string) error {
	if v.agent == nil {
		return errors.New("vm: the guest is not booted (call WaitBoot)")
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := v.agent.Shutdown(sctx, mode)
	cancel()
	if err != nil {
		return err
	}
	v.cfg.Log("vm: boot %d: guest %s requested", v.boots, mode)
	return nil
}

// PowerCut kills QEMU at once, like pulling the plug: nothing in the guest gets to flush.
func (v *VM) PowerCut() error {
	if v.cmd == nil {
		return nil
	}
	if v.Running() {
		v.cmd.Process.Signal(syscall.SIGKILL)
	}
	v.reap()
	v.cfg.Log("vm: boot %d: power cut", v.boots)
	return nil
}

// Close kills a running QEMU and removes the socket directory; the artifacts stay.
func (v *VM) Close() error {
	err := v.PowerCut()
	os.RemoveAll(v.sockDir)
	return err
}
