package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/sysroottest"
)

// agentStatus is what a device management agent reads of `bootc status --json`, no more.
type agentStatus struct {
	Status struct {
		Booted, Staged, Rollback *struct {
			Image *struct {
				Image       struct{ Image string } `json:"image"`
				ImageDigest string                 `json:"imageDigest"`
			} `json:"image"`
		}
	} `json:"status"`
}

// agentRebooting is the agents' rule for --apply: exit 0, or 137 when the reboot killed bootc.
func agentRebooting(code int) bool { return code == 0 || code == 137 }

// TestAgentCompatibility drives bootc with the argv a fleet management agent uses, reading only
// the fields it reads and judging exit codes by its rules: the version, status, a switch to an
// image pulled into podman's storage, a download-only switch to an OCI layout replaced by a
// registry switch, upgrade --apply, rollback --apply and usr-overlay.
func TestAgentCompatibility(t *testing.T) {
	needRoot(t)
	sysroottest.RequirePodman(t)
	envtest.NeedTool(t, "skopeo")
	dir := t.TempDir()
	reg := fetchtest.StartRegistry(t)
	conf := filepath.Join(dir, "registries.conf")
	if err := fetchtest.WriteRegistriesConf(conf, reg.Host); err != nil {
		t.Fatal(err)
	}
	usr := filepath.Join(dir, "usr")
	sysroottest.Files(t, usr, map[string]string{"bin/tool": "original\n"})
	l, oci := newLifecycle(t, "CONTAINERS_REGISTRIES_CONF="+conf, "BOOTC_USR="+usr)
	calls := l.calls
	l.layouts(oci, map[string]string{"latest": "1", "podman": "2", "delta": "3", "registry": "4"})
	l.install(oci + ":latest")

	if res := bootc(t, 0, l.env, "--version"); res.code != 0 || !strings.HasPrefix(res.stdout, "bootc ") {
		t.Errorf("bootc --version: exit %d, stdout %q", res.code, res.stdout)
	}
	status := func() agentStatus {
		t.Helper()
		var s agentStatus
		if err := json.Unmarshal([]byte(l.bootc("status", "--json").stdout), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := status(); s.Status.Booted == nil || s.Status.Booted.Image.Image.Image != oci+":latest" || !strings.HasPrefix(s.Status.Booted.Image.ImageDigest, "sha256:") {
		t.Fatalf("status: booted %+v", s.Status.Booted)
	}

	// The agent pulls with podman, then switches to the image in podman's storage.
	const local = "localhost/bootc-agent-test:2"
	if out, err := exec.Command("skopeo", "copy", "oci:"+oci+":podman", "containers-storage:"+local).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("podman", "rmi", "--force", local).Run() })
	res := bootc(t, 0, l.env, "switch", "--transport", "containers-storage", "--retain", local)
	if res.code != 0 || !strings.Contains(res.stdout, "Queued for next boot:") {
		t.Fatalf("switch from podman's storage: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if s := status(); s.Status.Staged == nil || s.Status.Staged.Image.Image.Image != local {
		t.Errorf("staged %+v, want %s", s.Status.Staged, local)
	}

	// A delta rebuilt into an OCI layout is staged download-only; the registry switch replaces it.
	if res := bootc(t, 0, l.env, "switch", "--transport", "oci", "--download-only", "--retain", oci+":delta"); res.code != 0 {
		t.Fatalf("download-only switch: exit %d\n%s", res.code, res.stderr)
	}
	reg.Push("oci:"+oci+":registry", "os:4")
	if res := bootc(t, 0, l.env, "switch", "--transport", "registry", "--retain", reg.Ref("os:4")); res.code != 0 || !strings.Contains(res.stdout, "Queued for next boot:") {
		t.Fatalf("registry switch: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if s := status(); s.Status.Staged == nil || s.Status.Staged.Image.Image.Image != reg.Ref("os:4") {
		t.Errorf("after the registry switch staged %+v, want %s", s.Status.Staged, reg.Ref("os:4"))
	}

	if res := bootc(t, 0, l.env, "upgrade", "--apply"); !agentRebooting(res.code) {
		t.Errorf("upgrade --apply: exit %d\n%s", res.code, res.stderr)
	}
	if b, _ := os.ReadFile(calls); !strings.HasPrefix(string(b), "reboot") {
		t.Errorf("upgrade --apply with a stage waiting did not reboot: systemctl %q", b)
	}
	l.tool("bootc-finalize")
	l.reboot()
	if s := status(); s.Status.Booted.Image.Image.Image != reg.Ref("os:4") || s.Status.Rollback == nil {
		t.Fatalf("after the reboot: booted %+v, rollback %+v", s.Status.Booted, s.Status.Rollback)
	}
	os.Remove(calls)
	if res := bootc(t, 0, l.env, "rollback", "--apply"); !agentRebooting(res.code) {
		t.Errorf("rollback --apply: exit %d\n%s", res.code, res.stderr)
	}
	if b, _ := os.ReadFile(calls); !strings.HasPrefix(string(b), "reboot") {
		t.Errorf("rollback --apply did not reboot: systemctl %q", b)
	}

	if res := bootc(t, 0, l.env, "usr-overlay"); res.code != 0 {
		t.Errorf("usr-overlay: exit %d\n%s", res.code, res.stderr)
	}
	t.Cleanup(func() { unix.Unmount(usr, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(usr, "bin/tool"), []byte("patched\n"), 0o755); err != nil {
		t.Errorf("writing under the overlay: %v", err)
	}
}
