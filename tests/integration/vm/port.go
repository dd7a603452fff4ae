package vm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

func (v *VM) portSocket(i int) string {
	return filepath.Join(v.sockDir, "port"+strconv.Itoa(i)+".sock")
}

// ReadLine waits up to timeout for the guest to write a line to the virtio-serial port name
// (Config.Ports) and returns it without the newline. QEMU ending first is ErrExited. A guest
// writes to the port only while the host is connected (until then its write waits), so nothing
// written before ReadLine is lost; the connection closes when ReadLine returns.
func (v *VM) ReadLine(ctx context.Context, name string, timeout time.Duration) (string, error) {
	i := slices.Index(v.ports, name)
	if !v.Running() {
		return "", ErrNotRunning
	}
	if i < 0 {
		return "", fmt.Errorf("vm: boot %d has no port %q (Config.Ports)", v.boots, name)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := v.dialPort(ctx, i)
	if err != nil {
		return "", fmt.Errorf("connecting to port %s: %w", name, err)
	}
	defer conn.Close()

	type result struct {
		line string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(conn).ReadString('\n')
		got <- result{line, err}
	}()
	select {
	case r := <-got:
		if r.err != nil {
			return "", fmt.Errorf("reading port %s: %w (read %q)", name, r.err, r.line)
		}
		return r.line[:len(r.line)-1], nil
	case <-v.done:
		return "", fmt.Errorf("waiting for a line on port %s: %w", name, v.exitError())
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for a line on port %s: %w; console log %s ends:\n%s", name, ctx.Err(), v.serial, v.SerialTail(30))
	}
}

// dialPort connects to a port's socket, which QEMU creates while it starts.
func (v *VM) dialPort(ctx context.Context, i int) (net.Conn, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", v.portSocket(i))
		if err == nil {
			return conn, nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(ctx.Err(), err)
		case <-v.done:
			return nil, v.exitError()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
