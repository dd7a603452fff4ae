package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"

	"gobootc.dev/lib/host"
	"gobootc.dev/lib/status"
)

// Run is `bootc edit`: apply a Host document's spec. Only two transitions exist: a new image
// (like switch) or a boot order flip (like rollback); both at once is refused.
func (c *EditCmd) Run(top *CLI, e *env) error {
	r, err := top.managedRoot()
	if err != nil {
		return err
	}
	current, err := status.Build(status.Options{Root: r, Cmdline: top.Cmdline})
	if err != nil {
		return err
	}
	data, err := c.read(current)
	if err != nil {
		return err
	}
	want, err := host.Parse(data)
	if err != nil {
		return err
	}
	if want.Spec.Image == nil && current.Spec.Image != nil {
		return fmt.Errorf("spec.image cannot be removed")
	}
	imageChange := !reflect.DeepEqual(want.Spec.Image, current.Spec.Image)
	orderChange := want.Spec.BootOrder != current.Spec.BootOrder
	switch {
	case imageChange && orderChange:
		return fmt.Errorf("Invalid state transition: rollback and image change")
	case imageChange:
		img := want.Spec.Image
		sw := &SwitchCmd{Target: img.Image, Transport: img.Transport, Quiet: c.Quiet,
			EnforceContainerSigpolicy: img.Signature != nil && img.Signature.Mode == host.SignatureContainerPolicy}
		return sw.Run(top, e)
	case orderChange:
		return (&RollbackCmd{}).Run(top, e)
	}
	fmt.Fprintln(e.stdout, "Edit cancelled, no changes made.")
	return nil
}

// read returns the edited document: the file given with -f, or the current status as YAML after
// $EDITOR has had it.
func (c *EditCmd) read(current *host.Host) ([]byte, error) {
	if c.Filename != "" {
		data, err := os.ReadFile(c.Filename)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", c.Filename, err)
		}
		return data, nil
	}
	doc, err := current.MarshalYAMLDoc()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bootc-edit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "host.yaml")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
		return nil, err
	}
	editor := os.Getenv("EDITOR")
	if editor == "" {
		editor = "vi"
	}
	// $EDITOR may carry arguments ("code --wait"), so let the shell split it.
	cmd := exec.Command("/bin/sh", "-c", editor+` "$1"`, "sh", path)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("running $EDITOR (%s): %w", editor, err)
	}
	return os.ReadFile(path)
}
