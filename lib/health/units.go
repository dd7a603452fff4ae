package health

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// A units list names units that must be active for the boot to be healthy, such as the
// application's quadlet service:
//
//	# /etc/bootc/health/units.d/50-app.toml
//	required = ["app.service", "db.service"]
//	wanted = ["metrics.service"]
//	timeout = "10m"
//
// Each list runs as a check of its kind, after the scripts of that kind in its tier. The check
// waits while a unit is starting (or not started yet: the checks run alongside the boot, not
// after it), fails as soon as one has failed, and fails when they are not all active after the
// timeout (the run's per-check timeout unless the file sets one).

// unitsFile is the format of a units list.
type unitsFile struct {
	Required []string `toml:"required"`
	Wanted   []string `toml:"wanted"`
	Timeout  string   `toml:"timeout"`
}

// unitLists reads the *.toml files of a units.d directory, in name order. A file that cannot be
// read becomes a required check that fails, so that a broken list cannot pass for a healthy boot.
func (p *Plan) unitLists(rel string) []Check {
	files, err := filepath.Glob(filepath.Join(p.Root, rel, "*.toml"))
	if err != nil {
		return nil // only a malformed pattern fails, and this one is fixed
	}
	slices.Sort(files)
	var out []Check
	for _, file := range files {
		if fi, err := os.Stat(file); err == nil && !fi.Mode().IsRegular() {
			continue
		}
		base := Check{File: file, Path: hostPath(p.Root, file), Type: Units}
		f, err := readUnitsFile(file)
		if err != nil {
			base.Kind, base.Invalid = Required, err
			out = append(out, base)
			continue
		}
		for _, l := range []struct {
			kind  Kind
			units []string
		}{{Required, f.Required}, {Wanted, f.Wanted}} {
			if len(l.units) == 0 {
				continue
			}
			c := base
			c.Kind, c.Units = l.kind, l.units
			if f.Timeout != "" {
				c.UnitTimeout, _ = time.ParseDuration(f.Timeout) // checked by readUnitsFile
			}
			out = append(out, c)
		}
	}
	return out
}

// readUnitsFile parses and checks one units list. Unknown keys are refused: a misspelt key would
// otherwise leave units unchecked without a word.
func readUnitsFile(path string) (*unitsFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading units list: %w", err)
	}
	f := &unitsFile{}
	md, err := toml.Decode(string(data), f)
	if err != nil {
		return nil, fmt.Errorf("parsing units list: %s", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	if extra := md.Undecoded(); len(extra) > 0 {
		return nil, fmt.Errorf("units list: unknown key %q (want required, wanted, timeout)", extra[0].String())
	}
	if f.Timeout != "" {
		d, err := time.ParseDuration(f.Timeout)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("units list: timeout %q: want a positive duration such as \"10m\"", f.Timeout)
		}
	}
	for _, u := range slices.Concat(f.Required, f.Wanted) {
		if err := checkUnitName(u); err != nil {
			return nil, fmt.Errorf("units list: %w", err)
		}
	}
	return f, nil
}

// checkUnitName refuses what cannot be a unit name, and anything systemctl would read as an
// option.
func checkUnitName(u string) error {
	if u == "" || strings.HasPrefix(u, "-") || strings.ContainsAny(u, "/ \t\n") || len(u) > 255 {
		return fmt.Errorf("%q is not a unit name", u)
	}
	return nil
}

// Systemd tells the state of units, as `systemctl is-active` prints it: active, activating,
// failed, inactive and so on, one per unit in the order asked.
type Systemd interface {
	ActiveStates(ctx context.Context, units []string) ([]string, error)
}

// Systemctl asks the systemctl program found on $PATH.
type Systemctl struct{}

// ActiveStates runs `systemctl is-active UNIT…`. Its exit status only says whether all are
// active; the states it prints are the answer.
func (Systemctl) ActiveStates(ctx context.Context, units []string) ([]string, error) {
	path, err := exec.LookPath("systemctl")
	if err != nil {
		return nil, fmt.Errorf("asking systemd for the state of %s: %w", strings.Join(units, ", "), err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, append([]string{"is-active"}, units...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	states := strings.Fields(stdout.String())
	if len(states) != len(units) {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" && runErr != nil {
			msg = runErr.Error()
		}
		return nil, fmt.Errorf("asking systemd for the state of %s: %s", strings.Join(units, ", "), msg)
	}
	return states, nil
}

// activeStates are the states systemctl is-active counts as active.
var activeStates = []string{"active", "reloading", "refreshing"}

// waitUnits waits until every unit of c is active, one has failed, or timeout has passed.
// lines are the units' last states, "app.service: failed", for the record.
func (r *runner) waitUnits(ctx context.Context, c Check, timeout time.Duration) (lines []string, timedOut bool, err error) {
	deadline := time.Now().Add(timeout)
	for {
		states, err := r.systemd.ActiveStates(ctx, c.Units)
		if err != nil {
			return nil, false, err
		}
		lines = lines[:0]
		var failed, waiting []string
		for i, u := range c.Units {
			lines = append(lines, u+": "+states[i])
			switch {
			case slices.Contains(activeStates, states[i]):
			case states[i] == "failed":
				failed = append(failed, u)
			default:
				waiting = append(waiting, u+" is "+states[i])
			}
		}
		switch {
		case len(failed) > 0:
			return lines, false, fmt.Errorf("%s failed", strings.Join(failed, ", "))
		case len(waiting) == 0:
			return lines, false, nil
		case !time.Now().Before(deadline):
			return lines, true, fmt.Errorf("not active after %v: %s", timeout, strings.Join(waiting, ", "))
		}
		select {
		case <-ctx.Done():
			return lines, false, ctx.Err()
		case <-time.After(min(r.poll, time.Until(deadline))):
		}
	}
}
