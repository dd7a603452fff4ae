package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"gobootc.dev/lib/deploy"
	"gobootc.dev/lib/kargs"
	"gobootc.dev/lib/layout"
)

// lint is one check of a root filesystem that is meant to become a bootable image.
type lint struct {
	name    string
	warning bool // a warning fails only with --fatal-warnings
	about   string
	check   func(root string) ([]string, error)
}

var lints = []lint{
	{"var-run", false, "/var/run must be a symlink to /run", lintVarRun},
	{"etc-usretc", false, "only one of /etc and /usr/etc may exist", lintEtcUsrEtc},
	{"bootc-kargs", false, "/usr/lib/bootc/kargs.d must parse", lintKargs},
	{"kernel", false, "exactly one kernel in /usr/lib/modules/<version>/ with vmlinuz and initramfs.img", lintKernel},
	{"utf8", false, "file names must be valid UTF-8", lintUTF8},
	{"api-base-directories", false, "the mount points of the API filesystems must exist", lintAPIDirs},
	{"var-tmpfiles", true, "content in /var is not updated by new images; create it with tmpfiles.d instead", lintVarContent},
}

// Run checks the root and lists what it finds; fatal findings (and warnings with
// --fatal-warnings) make it fail.
func (c *ContainerLintCmd) Run(e *env) error {
	if c.List {
		for _, l := range lints {
			kind := "fatal"
			if l.warning {
				kind = "warning"
			}
			fmt.Fprintf(e.stdout, "%s (%s): %s\n", l.name, kind, l.about)
		}
		return nil
	}
	for _, s := range c.Skip {
		if !slices.ContainsFunc(lints, func(l lint) bool { return l.name == s }) {
			return fmt.Errorf("--skip %s: no such check (see --list)", s)
		}
	}
	var fatal, warnings int
	for _, l := range lints {
		if slices.Contains(c.Skip, l.name) {
			continue
		}
		findings, err := l.check(c.Rootfs)
		if err != nil {
			return fmt.Errorf("check %s: %w", l.name, err)
		}
		if len(findings) == 0 {
			continue
		}
		kind := "error"
		if l.warning && !c.FatalWarnings {
			kind, warnings = "warning", warnings+1
		} else {
			fatal++
		}
		if !c.NoTruncate && len(findings) > 5 {
			findings = append(findings[:5], fmt.Sprintf("… and %d more (--no-truncate shows all)", len(findings)-5))
		}
		fmt.Fprintf(e.stdout, "%s %s: %s\n", kind, l.name, strings.Join(findings, "; "))
	}
	if fatal > 0 {
		return fmt.Errorf("%d check(s) failed", fatal)
	}
	fmt.Fprintf(e.stdout, "Checks passed (%d warnings).\n", warnings)
	return nil
}

func lintVarRun(root string) ([]string, error) {
	fi, err := os.Lstat(filepath.Join(root, "var/run"))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Mode()&fs.ModeSymlink != 0) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []string{"/var/run is not a symlink"}, nil
}

func lintEtcUsrEtc(root string) ([]string, error) {
	_, e1 := os.Lstat(filepath.Join(root, "etc"))
	_, e2 := os.Lstat(layout.ImageEtc(root))
	if e1 == nil && e2 == nil {
		return []string{"both /etc and /usr/etc exist"}, nil
	}
	return nil, nil
}

func lintKargs(root string) ([]string, error) {
	arch, err := kargs.HostArch()
	if err != nil {
		return nil, err
	}
	if _, err := kargs.Load(root, arch); err != nil {
		return []string{err.Error()}, nil
	}
	return nil, nil
}

func lintKernel(root string) ([]string, error) {
	if _, err := deploy.FindKernel(root); err != nil {
		return []string{err.Error()}, nil
	}
	return nil, nil
}

func lintUTF8(root string) ([]string, error) {
	var bad []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable parts are not this check's business
		}
		if d.IsDir() && (p == filepath.Join(root, "proc") || p == filepath.Join(root, "sys")) {
			return fs.SkipDir
		}
		if !utf8.ValidString(d.Name()) {
			rel, _ := filepath.Rel(root, p)
			bad = append(bad, fmt.Sprintf("%q", "/"+rel))
		}
		return nil
	})
	return bad, err
}

func lintAPIDirs(root string) ([]string, error) {
	var missing []string
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "var", "usr"} {
		if fi, err := os.Stat(filepath.Join(root, d)); err != nil || !fi.IsDir() {
			missing = append(missing, "/"+d)
		}
	}
	if len(missing) > 0 {
		return []string{"missing " + strings.Join(missing, ", ")}, nil
	}
	return nil, nil
}

// lintVarContent reports files in /var: /var is the machine's, so the image's copy is only ever
// used at install and later images cannot change it.
func lintVarContent(root string) ([]string, error) {
	var found []string
	base := filepath.Join(root, "var")
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		// Package caches and logs are expected leftovers of a build, not state.
		if strings.HasPrefix(rel, "var/cache/") || strings.HasPrefix(rel, "var/log/") || strings.HasPrefix(rel, "var/lib/dpkg/") || rel == "var/run" {
			return nil
		}
		found = append(found, "/"+rel)
		return nil
	})
	return found, err
}
