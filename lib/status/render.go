package status

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"gobootc.dev/lib/host"
)

// NotDeployed is the human output for a host that bootc does not manage.
const NotDeployed = "System is not deployed via bootc."

// Human writes the human-readable status: one block per slot, staged first, rows right-aligned
// under the slot's label.
func Human(w io.Writer, h *host.Host, verbose bool) error {
	st := h.Status
	if st.Booted == nil {
		_, err := fmt.Fprintln(w, NotDeployed)
		return err
	}
	var blocks []string
	add := func(prefix string, e *host.BootEntry, booted bool) {
		if e != nil {
			blocks = append(blocks, renderEntry(prefix, e, booted, st.UsrOverlay, verbose))
		}
	}
	add("  Staged", st.Staged, false)
	add("● Booted", st.Booted, true)
	add("  Rollback", st.Rollback, false)
	for i := range st.OtherDeployments {
		add("   Other", &st.OtherDeployments[i], false)
	}
	if notes := assessmentNotes(st, verbose); notes != "" {
		blocks = append(blocks, notes)
	}
	_, err := io.WriteString(w, strings.Join(blocks, "\n"))
	return err
}

// assessmentNotes tells what boot assessment found, a line each: this boot's health, loudly
// when RED, and the updates that failed to boot (which are not staged again). Verbose output
// adds the failing check's last lines.
func assessmentNotes(st host.HostStatus, verbose bool) string {
	var b strings.Builder
	lastLines := func(lines []string) {
		if verbose {
			for _, l := range lines {
				fmt.Fprintf(&b, "    | %s\n", l)
			}
		}
	}
	if h := st.Health; h != nil {
		switch {
		case h.Verdict == host.HealthGreen:
			fmt.Fprintf(&b, "Boot health: GREEN (checked at %s)\n", formatTime(h.Time))
		case h.FailedCheck != "":
			line := fmt.Sprintf("Boot health: %s — required check %s failed", h.Verdict, h.FailedCheck)
			if h.Reason != "" {
				line += " (" + h.Reason + ")"
			}
			b.WriteString(withLastLine(line, h.LastLines) + "\n")
			lastLines(h.LastLines)
		default:
			fmt.Fprintf(&b, "Boot health: %s (checked at %s)\n", h.Verdict, formatTime(h.Time))
		}
	}
	for _, f := range st.FailedUpdates {
		name := f.Image
		if name == "" {
			name = f.Deployment
		}
		why := f.Reason
		if f.Check != "" && !strings.Contains(why, f.Check) {
			why = strings.TrimPrefix(why+" (check "+f.Check+")", " ")
		}
		line := fmt.Sprintf("Failed update: %s (%s) failed at %s: %s", name, shortDigest(f.Digest), formatTime(f.Time), why)
		b.WriteString(withLastLine(line, f.LastLines) + "\n")
		lastLines(f.LastLines)
	}
	if len(st.FailedUpdates) > 0 {
		b.WriteString("Updates to a failed image are not staged again; --allow-failed stages one all the same.\n")
	}
	return b.String()
}

// withLastLine ends line with the last line of a check's output, unless line says it already.
func withLastLine(line string, lines []string) string {
	if len(lines) == 0 {
		return line
	}
	last := lines[len(lines)-1]
	if last == "" || strings.Contains(line, last) {
		return line
	}
	return line + ": " + last
}

// shortDigest is a digest as people compare them: its algorithm and first 12 hex digits.
func shortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 12 {
		return d
	}
	return algo + ":" + hex[:12]
}

// bootCountText is an entry's place in boot counting, in words.
func bootCountText(c *host.BootCount) string {
	switch {
	case c.State == host.BootCountBad:
		return "bad: out of tries, the boot loader boots another entry"
	case c.TriesLeft == 0:
		return "on trial, last try"
	case c.TriesLeft == 1:
		return "on trial, 1 try left"
	}
	return fmt.Sprintf("on trial, %d tries left", c.TriesLeft)
}

func renderEntry(prefix string, e *host.BootEntry, booted bool, overlay *host.FilesystemOverlay, verbose bool) string {
	var b strings.Builder
	var width int
	row := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%*s: %s\n", width, label, fmt.Sprintf(format, args...))
	}
	if im := e.Image; im != nil {
		head := prefix + " image"
		width = utf8.RuneCountInString(head)
		fmt.Fprintf(&b, "%s: %s\n", head, displayRef(im.Image))
		row("Digest", "%s (%s)", im.ImageDigest, im.Architecture)
		versionRows(row, "Version", "Timestamp", im)
		if u := e.CachedUpdate; u != nil && u.ImageDigest != im.ImageDigest {
			if u.Version != nil {
				versionRows(row, "UpdateVersion", "UpdateTimestamp", u)
			} else {
				row("Update", "Available")
			}
			row("UpdateDigest", "%s", u.ImageDigest)
		}
	} else {
		// Plain ostree commits align by the prefix's byte length, as upstream does; kept so that
		// documents describing such hosts render identically.
		head := prefix + " ostree"
		width = len(head)
		b.WriteString(head + "\n")
	}
	if o := e.Ostree; o != nil && (e.Image == nil || verbose) {
		if verbose {
			row("StateRoot", "%s", o.Stateroot)
			row("Deploy serial", "%d", o.DeploySerial)
			row("Staged", "%s", yesNo(strings.HasPrefix(prefix, "  Staged")))
		}
		row("Commit", "%s", o.Checksum)
	}
	if verbose && e.Image != nil {
		sig := "default"
		if s := e.Image.Image.Signature; s != nil {
			sig = string(s.Mode)
			if sig == "" {
				sig = "ostree-remote:" + s.OstreeRemote
			}
		}
		row("Signature", "%s", sig)
	}
	if verbose {
		row("Soft-reboot", "%s", capable(e.SoftRebootCapable))
		row("Download-only", "%s", yesNo(e.DownloadOnly))
	}
	if e.Pinned {
		row("Pinned", "yes")
	}
	if e.BootCount != nil {
		row("Boot counting", "%s", bootCountText(e.BootCount))
	}
	if booted && overlay != nil {
		row("/usr overlay", "%s", overlayText(overlay))
	}
	return b.String()
}

func versionRows(row func(string, string, ...any), vlabel, tlabel string, im *host.ImageStatus) {
	switch {
	case im.Version != nil && im.Timestamp != nil:
		row(vlabel, "%s (%s)", *im.Version, formatTime(*im.Timestamp))
	case im.Version != nil:
		row(vlabel, "%s", *im.Version)
	case im.Timestamp != nil:
		row(tlabel, "%s", formatTime(*im.Timestamp))
	}
}

// displayRef prints registry images bare and every other transport as transport:image.
func displayRef(r host.ImageReference) string {
	if r.Transport == host.TransportRegistry || r.Transport == "" {
		return r.Image
	}
	return r.Transport + ":" + r.Image
}

func formatTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func capable(v bool) string {
	if v {
		return "capable"
	}
	return "no"
}

func overlayText(o *host.FilesystemOverlay) string {
	access := "read-only"
	if o.AccessMode == host.AccessReadWrite {
		access = "read/write"
	}
	return string(o.Persistence) + ", " + access
}
