package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/sysroottest"
)

func TestContainerLint(t *testing.T) {
	good := func(t *testing.T) string {
		root := t.TempDir()
		sysroottest.Files(t, root, map[string]string{
			"dev/": "", "proc/": "", "sys/": "", "run/": "", "tmp/": "", "etc/hostname": "x\n",
			"usr/lib/modules/6.12.0/vmlinuz": "k", "usr/lib/modules/6.12.0/initramfs.img": "i",
			"usr/lib/bootc/kargs.d/10.toml": "kargs = [\"console=ttyS0\"]\n", "var/cache/apt/pkgcache.bin": "c",
		})
		os.Symlink("../run", filepath.Join(root, "var/run"))
		return root
	}
	cases := []struct {
		name    string
		breakIt func(root string)
		args    []string
		want    string // "" means it passes
	}{
		{"good root", func(string) {}, nil, ""},
		{"var/run directory", func(r string) { os.Remove(filepath.Join(r, "var/run")); os.Mkdir(filepath.Join(r, "var/run"), 0o755) }, nil, "var-run"},
		{"etc and usr/etc", func(r string) { os.MkdirAll(filepath.Join(r, "usr/etc"), 0o755) }, nil, "etc-usretc"},
		{"bad kargs", func(r string) {
			os.WriteFile(filepath.Join(r, "usr/lib/bootc/kargs.d/20.toml"), []byte("kargs = 1\n"), 0o644)
		}, nil, "bootc-kargs"},
		{"two kernels", func(r string) {
			sysroottest.Files(t, r, map[string]string{"usr/lib/modules/6.13.0/vmlinuz": "k", "usr/lib/modules/6.13.0/initramfs.img": "i"})
		}, nil, "kernel"},
		{"bad name", func(r string) { os.WriteFile(filepath.Join(r, "etc", "bad\xffname"), nil, 0o644) }, nil, "utf8"},
		{"no /proc", func(r string) { os.Remove(filepath.Join(r, "proc")) }, nil, "api-base-directories"},
		{"skipped", func(r string) { os.Remove(filepath.Join(r, "proc")) }, []string{"--skip", "api-base-directories"}, ""},
		{"var content is a warning", func(r string) { sysroottest.Files(t, r, map[string]string{"var/lib/app/db": "x"}) }, nil, ""},
		{"fatal warnings", func(r string) { sysroottest.Files(t, r, map[string]string{"var/lib/app/db": "x"}) }, []string{"--fatal-warnings"}, "var-tmpfiles"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := good(t)
			c.breakIt(root)
			r := bootc(t, -1, nil, append([]string{"container", "lint", "--rootfs", root}, c.args...)...)
			if c.want == "" {
				if r.code != 0 {
					t.Errorf("exit %d:\n%s%s", r.code, r.stdout, r.stderr)
				}
				return
			}
			if r.code == 0 || !strings.Contains(r.stdout, "error "+c.want+":") {
				t.Errorf("exit %d, want a %s error:\n%s%s", r.code, c.want, r.stdout, r.stderr)
			}
		})
	}
	if r := bootc(t, -1, nil, "container", "lint", "--list"); r.code != 0 || !strings.Contains(r.stdout, "var-run (fatal)") {
		t.Errorf("--list: %s", r.stdout)
	}
	oneLineError(t, bootc(t, -1, nil, "container", "lint", "--skip", "nope"), "no such check")
}
