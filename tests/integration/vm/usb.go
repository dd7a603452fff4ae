package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gobootc.dev/tests/integration/vm/qmp"
)

// maxStickID keeps the derived block node names ("usb-<id>-file") within QEMU's 31 bytes.
const maxStickID = 22

// QMP returns the monitor connection of the running boot, connecting on first use. It is
// closed when the boot ends.
func (v *VM) QMP(ctx context.Context) (*qmp.Client, error) {
	if !v.Running() {
		return nil, ErrNotRunning
	}
	if v.monitor != nil {
		return v.monitor, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Dial retries until the socket appears; a QEMU that ends meanwhile never creates it.
	done := v.done
	go func() {
		select {
		case <-done:
			cancel()
		case <-dctx.Done():
		}
	}()
	m, err := qmp.Dial(dctx, v.qmpSocket())
	if err != nil {
		if !v.Running() {
			return nil, v.exitError()
		}
		return nil, err
	}
	v.monitor = m
	return m, nil
}

// checkStickID accepts what QEMU accepts as a device id, short enough to name block nodes.
func checkStickID(id string) error {
	if id == "" {
		return errors.New("vm: USB stick id is empty")
	}
	if len(id) > maxStickID {
		return fmt.Errorf("vm: USB stick id %q is longer than %d bytes", id, maxStickID)
	}
	for i, r := range id {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if i == 0 && !letter {
			return fmt.Errorf("vm: USB stick id %q does not start with a letter", id)
		}
		if !letter && !(r >= '0' && r <= '9') && r != '-' && r != '.' && r != '_' {
			return fmt.Errorf("vm: USB stick id %q has %q; use letters, digits, '-', '.', '_'", id, r)
		}
	}
	return nil
}

// stickNode is the raw-format block node a stick's device reads; its file node is
// stickNode+"-file".
func stickNode(id string) string { return "usb-" + id }

func (v *VM) usbMonitor(ctx context.Context) (*qmp.Client, error) {
	if !v.Running() {
		return nil, ErrNotRunning
	}
	if !v.usb {
		return nil, ErrNoUSB
	}
	return v.QMP(ctx)
}

// AttachUSB plugs a USB stick backed by the raw image at path into the running machine, as
// device id (letters, digits, '-', '.', '_'; at most 22 bytes). The guest sees a removable
// USB mass-storage disk; readOnly makes it write-protected.
func (v *VM) AttachUSB(ctx context.Context, id, path string, readOnly bool) error {
	if err := checkStickID(id); err != nil {
		return err
	}
	m, err := v.usbMonitor(ctx)
	if err != nil {
		return fmt.Errorf("vm: attaching USB stick %q: %w", id, err)
	}
	if v.sticks[id] {
		return fmt.Errorf("vm: attaching USB stick %q: a stick with this id is already attached", id)
	}
	node := stickNode(id)
	_, err = m.Execute(ctx, "blockdev-add", map[string]any{
		"driver":    "raw",
		"node-name": node,
		"read-only": readOnly,
		"file": map[string]any{
			"driver":    "file",
			"node-name": node + "-file",
			"filename":  path,
			"read-only": readOnly,
		},
	})
	if err != nil {
		return fmt.Errorf("vm: attaching USB stick %q (%s): %w", id, path, err)
	}
	_, err = m.Execute(ctx, "device_add", map[string]any{
		"driver":    "usb-storage",
		"bus":       "xhci.0",
		"id":        id,
		"drive":     node,
		"removable": true,
	})
	if err != nil {
		// Free the image again, so the id and the file can be used for another try.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		_, rerr := m.Execute(rctx, "blockdev-del", map[string]any{"node-name": node})
		cancel()
		return errors.Join(fmt.Errorf("vm: attaching USB stick %q (%s): %w", id, path, err), rerr)
	}
	v.sticks[id] = true
	v.cfg.Log("vm: boot %d: USB stick %s attached (%s)", v.boots, id, path)
	return nil
}

// DetachUSB pulls the USB stick id out: it asks QEMU to unplug the device, waits until QEMU
// reports it gone (DEVICE_DELETED) and only then closes the image, which the device may still
// be reading until that moment. QEMU unplugs USB devices without the guest's consent, so the
// event normally comes at once; the wait is bounded by ctx, or DefaultCommandTimeout when ctx
// has no deadline. After a timeout the stick may still go away later; calling DetachUSB again
// waits again.
func (v *VM) DetachUSB(ctx context.Context, id string) error {
	if err := checkStickID(id); err != nil {
		return err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCommandTimeout)
		defer cancel()
	}
	m, err := v.usbMonitor(ctx)
	if err != nil {
		return fmt.Errorf("vm: detaching USB stick %q: %w", id, err)
	}
	_, err = m.Execute(ctx, "device_del", map[string]any{"id": id})
	var qerr *qmp.Error
	// A stick whose earlier detach gave up waiting may be gone by now; its event is kept.
	gone := errors.As(err, &qerr) && qerr.Class == "DeviceNotFound" && v.sticks[id]
	if err != nil && !gone {
		return fmt.Errorf("vm: detaching USB stick %q: %w", id, err)
	}
	_, err = m.WaitEvent(ctx, "DEVICE_DELETED", func(e qmp.Event) bool {
		var d struct {
			Device string `json:"device"`
		}
		return json.Unmarshal(e.Data, &d) == nil && d.Device == id
	})
	if err != nil {
		return fmt.Errorf("vm: detaching USB stick %q: the device was not removed: %w", id, err)
	}
	if _, err := m.Execute(ctx, "blockdev-del", map[string]any{"node-name": stickNode(id)}); err != nil {
		return fmt.Errorf("vm: detaching USB stick %q: closing its image: %w", id, err)
	}
	delete(v.sticks, id)
	v.cfg.Log("vm: boot %d: USB stick %s detached", v.boots, id)
	return nil
}
