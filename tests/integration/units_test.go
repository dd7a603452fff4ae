package integration

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gobootc.dev/lib/envtest"
)

var execLine = regexp.MustCompile(`^Exec(Start|Stop|StartPre|StartPost|Reload)=[-+!@:]*(/\S+)`)

// unitRoot lays out a root holding the host's systemd units, ours, and an executable at every
// path our units run, so systemd-analyze verify can resolve everything.
func unitRoot(t *testing.T) (root string, ours []string) {
	t.Helper()
	envtest.NeedTool(t, "systemd-analyze")
	root = t.TempDir()
	sys := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(filepath.Dir(sys), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", filepath.Dir(sys)+"/").CombinedOutput(); err != nil {
		t.Fatalf("copying host units: %v\n%s", err, out)
	}
	units, _ := filepath.Glob("../../units/*")
	if len(units) < 12 {
		t.Fatalf("found only %d units", len(units))
	}
	for _, u := range units {
		if strings.HasSuffix(u, ".rules") || strings.HasSuffix(u, ".preset") {
			continue // udev rules, presets: not systemd units
		}
		data, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(sys, filepath.Base(u))
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		ours = append(ours, dst)
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			if m := execLine.FindStringSubmatch(sc.Text()); m != nil {
				p := filepath.Join(root, m[2])
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755)
			}
		}
		if !strings.Contains(string(data), "# Step order:") {
			t.Errorf("%s has no step-order comment", u)
		}
	}
	return root, ours
}

func verify(root string, units []string) (string, error) {
	args := append([]string{"verify", "--root=" + root}, units...)
	out, err := exec.Command("systemd-analyze", args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestUnitsVerify(t *testing.T) {
	root, units := unitRoot(t)
	if out, err := verify(root, units); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check is real: a unit with an unknown directive is reported.
	bad := filepath.Join(filepath.Dir(units[0]), "bootc-broken.service")
	os.WriteFile(bad, []byte("[Service]\nExecStart=/usr/bin/bootc status\nNoSuchDirective=1\n"), 0o644)
	if out, _ := verify(root, []string{bad}); !strings.Contains(out, "NoSuchDirective") {
		t.Errorf("a broken unit passed verification: %q", out)
	}
}

// The preset enables units that exist and can be enabled.
func TestPreset(t *testing.T) {
	data, err := os.ReadFile("../../units/80-bootc.preset")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) != 2 || f[0] != "enable" {
			t.Errorf("preset line %q: want enable UNIT", line)
			continue
		}
		unit, err := os.ReadFile(filepath.Join("../../units", f[1]))
		if err != nil || !strings.Contains(string(unit), "\n[Install]\n") {
			t.Errorf("preset enables %s: %v, or it has no [Install] section", f[1], err)
		}
		n++
	}
	if n == 0 {
		t.Error("the preset enables nothing")
	}
}
