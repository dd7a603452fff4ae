// Package health assesses a boot the way greenboot does, so that existing checks keep working:
// it finds the health checks under a root, runs them in greenboot's order with a timeout each,
// and decides GREEN or RED; then it runs the green.d or red.d hooks.
package health

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gobootc.dev/lib/greenboot"
	"gobootc.dev/lib/layout"
)

// Kind says what a check or hook is for.
type Kind string

// The kinds. A required check's failure makes the boot RED; a wanted one's is only reported.
// Green and red hooks run after a GREEN and a RED verdict; their failures change nothing.
const (
	Required Kind = "required"
	Wanted   Kind = "wanted"
	Green    Kind = "green"
	Red      Kind = "red"
)

// Type says how a check runs.
type Type string

// The types: a *.sh file runs as `bash FILE` whatever its mode (greenboot's shipped tests
// include a mode-0644 script without a shebang that must fail the boot); an executable of any
// other name runs directly; a units list asks systemd whether its units are active.
const (
	Script     Type = "script"
	Executable Type = "executable"
	Units      Type = "units"
)

// Check is one check or hook found under a root.
type Check struct {
	// Path is the file as the booted host names it (/etc/greenboot/check/required.d/10_x.sh);
	// File is where it is read, under the root the plan was loaded from.
	Path string
	File string
	Kind Kind
	Type Type
	// Units are the units a Units check waits for; UnitTimeout, when set, replaces the run's
	// timeout for it.
	Units       []string
	UnitTimeout time.Duration
	// Invalid is why a units list cannot be read; the check fails with it when run.
	Invalid error
	// Disabled: DISABLED_HEALTHCHECKS names the file, so it does not run.
	Disabled bool
}

// Name is the check's file name: what greenboot's messages, DISABLED_HEALTHCHECKS and the
// journal (SYSLOG_IDENTIFIER) call it.
func (c Check) Name() string { return filepath.Base(c.Path) }

// Plan is everything a root asks to run, in order.
type Plan struct {
	Root   string
	Checks []Check // required and wanted checks, in the order they run
	Green  []Check // hooks after a GREEN verdict
	Red    []Check // hooks after a RED verdict
	// Warnings are about the configuration: statements of greenboot.conf left out, directories
	// that could not be read. The checks run all the same.
	Warnings []string
}

// tier is one place checks come from: greenboot's vendor and admin directories, then this
// project's, which follow the same rules and add lists of units.
type tier struct {
	checks string // holds required.d and wanted.d
	hooks  string // holds green.d and red.d
	units  string // holds units.d, "" for greenboot's tiers
}

// tiers are in the order greenboot runs its directories (/usr/lib before /etc), with this
// project's after greenboot's. There is no masking by name: a file in /etc with the name of one
// in /usr/lib runs as well, as in greenboot.
var tiers = []tier{
	{checks: "usr/lib/greenboot/check", hooks: "usr/lib/greenboot"},
	{checks: "etc/greenboot/check", hooks: "etc/greenboot"},
	{checks: "usr/lib/bootc/health", hooks: "usr/lib/bootc/health", units: "usr/lib/bootc/health/units.d"},
	{checks: "etc/bootc/health", hooks: "etc/bootc/health", units: "etc/bootc/health/units.d"},
}

// DisabledKey is the greenboot.conf array of file names that do not run.
const DisabledKey = "DISABLED_HEALTHCHECKS"

// Load finds the checks and hooks under root, and reads greenboot.conf for the ones it leaves
// out. Within each tier, required.d runs before wanted.d, each followed by the tier's units
// lists of that kind. Missing directories are no error: a root without checks is GREEN.
func Load(root string) (*Plan, error) {
	conf, err := greenboot.Load(root)
	if err != nil {
		return nil, err
	}
	p := &Plan{Root: root}
	for _, w := range conf.Warnings {
		p.Warnings = append(p.Warnings, layout.GreenbootConf("/etc")+": "+w)
	}
	for _, t := range tiers {
		var lists []Check
		if t.units != "" {
			lists = p.unitLists(t.units)
		}
		for _, kind := range []Kind{Required, Wanted} {
			p.Checks = append(p.Checks, p.files(filepath.Join(t.checks, string(kind)+".d"), kind)...)
			for _, l := range lists {
				if l.Kind == kind {
					p.Checks = append(p.Checks, l)
				}
			}
		}
		p.Green = append(p.Green, p.files(filepath.Join(t.hooks, "green.d"), Green)...)
		p.Red = append(p.Red, p.files(filepath.Join(t.hooks, "red.d"), Red)...)
	}
	disabled := conf.List(DisabledKey)
	for _, list := range [][]Check{p.Checks, p.Green, p.Red} {
		for i := range list {
			list[i].Disabled = slices.Contains(disabled, list[i].Name())
		}
	}
	return p, nil
}

// files finds the checks in one directory as greenboot's `find DIR -name '*.sh' | sort` does,
// with executables of other names added: the whole tree, hidden files included, symbolic links
// to directories not followed, sorted by path in byte order (greenboot's sort uses the service's
// locale; for names such as NN_name.sh the order is the same).
func (p *Plan) files(rel string, kind Kind) []Check {
	dir := filepath.Join(p.Root, rel)
	var out []Check
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			p.Warnings = append(p.Warnings, fmt.Sprintf("reading %s: %v", hostPath(p.Root, path), err))
			return nil
		}
		if d.IsDir() {
			return nil
		}
		c := Check{File: path, Path: hostPath(p.Root, path), Kind: kind}
		switch {
		case strings.HasSuffix(d.Name(), ".sh"):
			c.Type = Script
		case isExecutable(path):
			c.Type = Executable
		default:
			return nil
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		p.Warnings = append(p.Warnings, fmt.Sprintf("reading /%s: %v", rel, err))
	}
	slices.SortFunc(out, func(a, b Check) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// isExecutable reports whether path is, or links to, a regular file with an execute bit.
func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// hostPath is path as the system under root names it.
func hostPath(root, path string) string {
	rel, err := filepath.Rel(root, path)
	if err != nil {
		return path
	}
	return "/" + filepath.ToSlash(rel)
}
