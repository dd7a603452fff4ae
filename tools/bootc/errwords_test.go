package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/record"
)

// Agents tell failures apart by the words of their cause in bootc's one error line: the
// registry's "manifest unknown" and "unauthorized", the kernel's "connection refused". Each
// failed switch changes nothing.
func TestErrorWords(t *testing.T) {
	needRoot(t)
	reg := fetchtest.StartRegistry(t)
	denied := fetchtest.StartProxy(t, reg.Host)
	denied.Deny()
	closed, err := fetchtest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	closedHost := fmt.Sprintf("127.0.0.1:%d", closed)
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := fetchtest.WriteRegistriesConf(conf, reg.Host, denied.Host, closedHost); err != nil {
		t.Fatal(err)
	}
	l, oci := newLifecycle(t, "CONTAINERS_REGISTRIES_CONF="+conf)
	r := l.r
	l.layouts(oci, map[string]string{"latest": "1", "two": "2"})
	l.install(oci + ":latest")
	reg.Push("oci:"+oci+":two", "os:2")

	for _, c := range []struct{ name, image, words string }{
		{"tag missing", reg.Ref("os:nope"), "manifest unknown"},
		{"credentials refused", denied.Ref("os:2"), "unauthorized"},
		{"nothing listening", closedHost + "/os:2", "connection refused"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := bootc(t, 0, l.env, "switch", c.image)
			lines := strings.Split(strings.TrimSuffix(res.stderr, "\n"), "\n")
			if res.code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "bootc switch: error: ") || !strings.Contains(lines[0], c.words) {
				t.Errorf("exit %d, stderr %q: want one error line with %q", res.code, res.stderr, c.words)
			}
			if _, err := record.ReadStaged(r); err == nil {
				t.Error("a failed switch staged something")
			}
			if spec := l.status().Spec.Image; spec == nil || spec.Image != oci+":latest" {
				t.Errorf("after a failed switch the host tracks %+v", spec)
			}
		})
	}
	if _, err := os.Stat(r.Staged()); err == nil {
		t.Error("staged record left")
	}
}
