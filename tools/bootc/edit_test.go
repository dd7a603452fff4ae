package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/host"
	"gobootc.dev/lib/status"
	"gobootc.dev/lib/sysroottest"
)

func TestEdit(t *testing.T) {
	needRoot(t)
	h := sysroottest.NewHost(t, nil)
	env := hostEnv(t, h)
	current, err := status.Build(status.Options{Root: h.Root})
	if err != nil {
		t.Fatal(err)
	}
	write := func(mod func(*host.Host)) string {
		doc := *current
		spec := doc.Spec
		img := *spec.Image
		spec.Image = &img
		doc.Spec = spec
		mod(&doc)
		b, err := doc.MarshalYAMLDoc()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "host.yaml")
		os.WriteFile(p, b, 0o644)
		return p
	}

	unchanged := write(func(*host.Host) {})
	if r := bootc(t, 0, env, "edit", "-f", unchanged); r.code != 0 || !strings.Contains(r.stdout, "no changes") {
		t.Errorf("unchanged spec: %d %s%s", r.code, r.stdout, r.stderr)
	}
	both := write(func(d *host.Host) { d.Spec.BootOrder = "rollback"; d.Spec.Image.Image = "127.0.0.1:5000/os:v9" })
	oneLineError(t, bootc(t, 0, env, "edit", "-f", both), "Invalid state transition")
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("apiVersion: org.containers.bootc/v1\nkind: Pod\n"), 0o644)
	oneLineError(t, bootc(t, 0, env, "edit", "-f", bad), "unsupported kind")
	noImage := write(func(d *host.Host) { d.Spec.Image = nil })
	oneLineError(t, bootc(t, 0, env, "edit", "-f", noImage), "cannot be removed")

	// bootOrder: rollback acts like `bootc rollback`.
	order := write(func(d *host.Host) { d.Spec.BootOrder = "rollback" })
	if r := bootc(t, 0, env, "edit", "-f", order); r.code != 0 || !strings.Contains(r.stdout, "Next boot: rollback deployment") {
		t.Fatalf("bootOrder edit: %d %s%s", r.code, r.stdout, r.stderr)
	}
	if got := h.BootOrder(); got != "aaaa.0,bbbb.0" {
		t.Errorf("boot order after edit: %s", got)
	}
	// An image change acts like `bootc switch`: here the image cannot be fetched, and the error
	// names it, which shows the switch path ran.
	img := write(func(d *host.Host) {
		d.Spec.BootOrder = "rollback" // unchanged now that the rollback is queued
		d.Spec.Image = &host.ImageReference{Image: "/nonexistent/layout:v9", Transport: "oci"}
	})
	r := bootc(t, 0, env, "edit", "-f", img)
	if r.code == 0 || !strings.Contains(r.stderr, "/nonexistent/layout") {
		t.Errorf("image edit: %d %s%s", r.code, r.stdout, r.stderr)
	}
}
