// Command bootc-systemd-generator runs early at every boot of the host and enables the bootc units
// the state calls for: the status hooks on a host booted through bootc, the failure report when
// the last finalize failed, and the cleanup of what the last successful one left unneeded. It
// uses the standard library only: generators run before most of the system is up.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gobootc.dev/lib/layout"
)

// wants is one unit to enable: a link to it in the target's .wants directory.
type wants struct{ target, unit string }

// plan decides which units the state calls for.
func plan(r layout.Root) ([]wants, error) {
	if _, err := os.Stat(r.Booted()); errors.Is(err, fs.ErrNotExist) {
		return nil, nil // not booted through bootc: enable nothing
	} else if err != nil {
		return nil, err
	}
	w := []wants{
		{"multi-user.target", "bootc-status-updated.path"},
		{"multi-user.target", "bootc-status-updated-onboot.target"},
	}
	if _, err := os.Stat(r.FinalizeFailure()); err == nil {
		w = append(w, wants{"multi-user.target", "bootc-finalize-failure.service"})
	}
	if _, err := os.Stat(r.CleanupPending()); err == nil {
		w = append(w, wants{"multi-user.target", "bootc-cleanup.service"})
	}
	return w, nil
}

// generate writes the links into the generator's output directory. Running it again gives the
// same result (links are replaced).
func generate(r layout.Root, unitDir, outDir string) error {
	w, err := plan(r)
	if err != nil {
		return err
	}
	for _, x := range w {
		dir := filepath.Join(outDir, x.target+".wants")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		link := filepath.Join(dir, x.unit)
		os.Remove(link)
		if err := os.Symlink(filepath.Join(unitDir, x.unit), link); err != nil {
			return fmt.Errorf("enabling %s: %w", x.unit, err)
		}
	}
	return nil
}

func main() {
	// systemd passes the normal, early and late output directories; the links go to the normal one.
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bootc-systemd-generator NORMAL-DIR [EARLY-DIR LATE-DIR]")
		os.Exit(2)
	}
	r := layout.New(envOr("BOOTC_SYSROOT", layout.DefaultSysroot), envOr("BOOTC_RUN_DIR", layout.DefaultRunDir))
	if err := generate(r, "/usr/lib/systemd/system", os.Args[1]); err != nil {
		// A generator must not stop the boot: report and carry on with nothing enabled.
		fmt.Fprintf(os.Stderr, "bootc-systemd-generator: %v\n", err)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
