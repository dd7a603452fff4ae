package health

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"

	"gobootc.dev/lib/record"
)

// MOTDPath is the login message pam_motd shows from /run/motd.d, where greenboot writes it,
// relative to the root.
const MOTDPath = "run/motd.d/boot-status"

// InProgress is the login message while the checks run.
const InProgress = "GREENBOOT is currently performing the provided checks.\n" +
	"Log in again once they have finished to see the boot status.\n"

// MOTD is the login message for a verdict: greenboot's lines for the checks that failed and for
// the verdict, then, for a RED boot, which check failed, why, when, and its last lines.
func MOTD(h *record.Health) string {
	var b strings.Builder
	for _, c := range h.Checks {
		if (c.Outcome == record.CheckFailed || c.Outcome == record.CheckTimedOut) && (c.Kind == string(Required) || c.Kind == string(Wanted)) {
			b.WriteString(Failure(c) + "\n")
		}
	}
	if h.Verdict == record.Green {
		b.WriteString("Boot Status is GREEN - Health Check SUCCESS\n")
		return b.String()
	}
	b.WriteString("Boot Status is RED - Health Check FAILURE!\n")
	if f := h.Failure(); f != nil {
		fmt.Fprintf(&b, "Failed check: %s (%s) at %s.\n", f.Path, Reason(*f), h.Finished.UTC().Format(time.RFC3339))
		if h.ID != "" {
			fmt.Fprintf(&b, "Deployment: %s/%s", h.Stateroot, h.ID)
			if h.ManifestDigest != "" {
				fmt.Fprintf(&b, " (%s)", h.ManifestDigest)
			}
			b.WriteString("\n")
		}
		if len(f.LastLines) > 0 {
			b.WriteString("Last lines of its output:\n")
			for _, l := range f.LastLines {
				b.WriteString("    " + l + "\n")
			}
		}
	}
	if a := h.Assessment; a != nil && a.TriesLeft != nil {
		fmt.Fprintf(&b, "Tries left for this deployment: %d\n", *a.TriesLeft)
	}
	return b.String()
}

// WriteMOTD replaces root's login message with text, atomically: a login never shows half of it.
func WriteMOTD(root, text string) error {
	path := filepath.Join(root, MOTDPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing the login message: %w", err)
	}
	if err := renameio.WriteFile(path, []byte(text), 0o644); err != nil {
		return fmt.Errorf("writing the login message: %w", err)
	}
	return nil
}
