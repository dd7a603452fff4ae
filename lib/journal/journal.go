// Package journal sends bootc's structured event messages to the systemd journal.
//
// Each event kind carries a fixed MESSAGE_ID so administrators and agents can
// find it with `journalctl MESSAGE_ID=<id>` regardless of the wording of the
// message. Every ID is a valid sd-id128: 32 lowercase hex digits.
package journal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	sdjournal "github.com/coreos/go-systemd/v22/journal"
)

// ID is a journal MESSAGE_ID.
type ID string

// MESSAGE_IDs of bootc's events. Rollback keeps upstream bootc's documented
// id so existing queries keep working; upstream's other ids are 33 hex digits
// (not valid sd-id128), so these were generated afresh from /dev/urandom and
// must never change once released.
const (
	// Stage: a new deployment was staged, to be finalized at shutdown.
	Stage ID = "6ec513dab1c208c782228b0b35320e66"
	// Switch: the host was pointed at a different image reference.
	Switch ID = "270ab56c1c0016c0b214c5bde44df184"
	// Rollback: the boot order of the booted and rollback deployments was
	// swapped (upstream bootc's id).
	Rollback ID = "26f3b1eb24464d12aa5e7b544a6b5468"
	// Finalize: the staged deployment was written into the bootloader
	// entries at shutdown.
	Finalize ID = "31433b0ce0e818b2ee5c7499bca1fe8d"
	// FinalizeFailed: finalizing the staged deployment failed; the previous
	// deployment stays the default.
	FinalizeFailed ID = "424df2d920d12d318453007beef840ff"
	// Fetch: a new image was pulled into the store.
	Fetch ID = "0d0f30802874a555f45de99ef0add78b"
	// BoundImages: logically bound images were pulled into bootc's storage.
	BoundImages ID = "e75e641f32acd77433d96f4835e00ab6"
	// Cleanup: unreferenced deployments, images or objects were garbage
	// collected.
	Cleanup ID = "c5887bd53edf3143d95bb30535d7058f"
	// HealthCheck: one health check of the boot passed, failed or was
	// skipped (BOOTC_HEALTH_CHECK names it).
	HealthCheck ID = "b0ee3a8f91293b26902d97285e132cbc"
	// HealthGreen: every required health check of the boot passed.
	HealthGreen ID = "9c7f32a3155c8d200c8476df3a02cc1c"
	// HealthRed: a required health check of the boot failed.
	HealthRed ID = "77be2a49ff08877b3a7a76d413ce753c"
	// BootFallback: the boot loader gave up on a deployment whose tries ran
	// out and booted the previous one; the failed image was recorded and the
	// fallback made permanent.
	BootFallback ID = "c1f9c820cda468f9f13cc98a229bc587"
	// BootBlessed: a deployment on trial passed its health checks; the boot
	// loader counts no more tries for it.
	BootBlessed ID = "9f0bb25a81fa176f1df995ceeb2d5bd8"
	// BootRedReboot: the boot is RED and its deployment is on trial: the host
	// reboots for the next try, or for the fallback.
	BootRedReboot ID = "7f8c53f71f2045d7f8f82a45abea296a"
	// BootRedStayUp: the boot is RED with nothing to fall back to (no trial
	// under way: steady state, first boot, fallback boot); the host stays up.
	BootRedStayUp ID = "74279b412b762729a373738aed9895f1"
)

// Priority is a syslog priority (PRIORITY field), most severe first.
type Priority int

// Syslog priorities.
const (
	Emerg Priority = iota
	Alert
	Crit
	Err
	Warning
	Notice
	Info
	Debug
)

// ErrInvalidField means a field name would be rejected or reinterpreted by
// journald.
var ErrInvalidField = errors.New("invalid journal field name")

// reserved are the fields Send sets itself; letting callers pass them would
// produce entries with two conflicting values.
var reserved = map[string]bool{
	"MESSAGE":           true,
	"MESSAGE_ID":        true,
	"PRIORITY":          true,
	"SYSLOG_IDENTIFIER": true,
}

var (
	mu       sync.Mutex
	fallback io.Writer = os.Stderr
	// enabled is swapped by tests so the fallback path does not depend on
	// whether the test host runs journald.
	enabled = sdjournal.Enabled
)

// identifier is the program name, e.g. "bootc-stage".
var identifier = programName()

func programName() string {
	if len(os.Args) == 0 || os.Args[0] == "" {
		return "bootc"
	}
	return filepath.Base(os.Args[0])
}

// SetFallback sets where Send writes when no journal is reachable (default
// os.Stderr) and returns the previous writer.
func SetFallback(w io.Writer) io.Writer {
	mu.Lock()
	defer mu.Unlock()
	prev := fallback
	fallback = w
	return prev
}

// ValidField reports whether name can be a journal field name set by a
// client: 1 to 64 of A-Z, 0-9 and '_', not starting with '_' (trusted fields)
// or a digit, which is what journald itself accepts.
func ValidField(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidField)
	case len(name) > 64:
		return fmt.Errorf("%w %q: longer than 64 characters", ErrInvalidField, name)
	case name[0] == '_':
		return fmt.Errorf("%w %q: starts with an underscore", ErrInvalidField, name)
	case name[0] >= '0' && name[0] <= '9':
		return fmt.Errorf("%w %q: starts with a digit", ErrInvalidField, name)
	}
	for _, c := range name {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return fmt.Errorf("%w %q: only A-Z, 0-9 and _ are allowed", ErrInvalidField, name)
		}
	}
	return nil
}

func validID(id ID) error {
	if len(id) != 32 || strings.Trim(string(id), "0123456789abcdef") != "" {
		return fmt.Errorf("invalid journal message id %q: want 32 lowercase hex digits", string(id))
	}
	if strings.Trim(string(id), "0") == "" {
		return fmt.Errorf("invalid journal message id %q: all zero", string(id))
	}
	return nil
}

// Send logs message with the given MESSAGE_ID, priority and extra fields,
// adding SYSLOG_IDENTIFIER (the program name). Without a reachable journal it
// writes one line "bootc: <message>" to the fallback writer instead. If the
// journal is reachable but the send fails, the line is written to the
// fallback writer as well, so the event is not lost, and the error returned.
func Send(id ID, pri Priority, message string, fields map[string]string) error {
	vars, err := entryFields(id, pri, fields)
	if err != nil {
		return err
	}
	if enabled() {
		err := sdjournal.Send(message, sdjournal.Priority(pri), vars)
		if err == nil {
			return nil
		}
		if werr := writeFallback(message); werr != nil {
			return fmt.Errorf("sending journal message: %w", errors.Join(err, werr))
		}
		return fmt.Errorf("sending journal message: %w", err)
	}
	if err := writeFallback(message); err != nil {
		return fmt.Errorf("writing journal fallback: %w", err)
	}
	return nil
}

// Report is Send for an event that is also a line of a command's output, written to w. Each
// reaches the journal once: when w is itself the journal (a service's output, as
// JOURNAL_STREAM names it) and the entry was sent, the line is not written; when no journal is
// reachable, the line alone is written, and no fallback line besides it. Otherwise (output to a
// terminal or a pipe) both are written. A failed send is returned after the line is written.
func Report(w io.Writer, id ID, pri Priority, message string, fields map[string]string) error {
	vars, err := entryFields(id, pri, fields)
	if err != nil {
		return err
	}
	var sendErr error
	if enabled() {
		sendErr = sdjournal.Send(message, sdjournal.Priority(pri), vars)
		if sendErr == nil && isJournalStream(w) {
			return nil
		}
	}
	if _, err := fmt.Fprintln(w, message); err != nil {
		sendErr = errors.Join(sendErr, err)
	}
	if sendErr != nil {
		return fmt.Errorf("sending journal message: %w", sendErr)
	}
	return nil
}

// Relay passes one line of another program's output (a health check's) to the journal under
// that program's name, as `systemd-cat -t identifier` does: SYSLOG_IDENTIFIER is identifier and
// there is no MESSAGE_ID; fields tie the line to what ran it. Like Report, the line is also
// written to w, as "identifier: line", unless w is the journal stream and the entry was sent;
// without a journal, w is where the line goes.
func Relay(w io.Writer, identifier string, pri Priority, line string, fields map[string]string) error {
	if identifier == "" || strings.ContainsAny(identifier, "\n\r") {
		return fmt.Errorf("invalid journal identifier %q", identifier)
	}
	vars, err := lineFields(pri, fields)
	if err != nil {
		return err
	}
	vars["SYSLOG_IDENTIFIER"] = identifier
	var sendErr error
	if enabled() {
		sendErr = sdjournal.Send(line, sdjournal.Priority(pri), vars)
		if sendErr == nil && isJournalStream(w) {
			return nil
		}
	}
	if _, err := fmt.Fprintf(w, "%s: %s\n", identifier, line); err != nil {
		sendErr = errors.Join(sendErr, err)
	}
	if sendErr != nil {
		return fmt.Errorf("sending journal message: %w", sendErr)
	}
	return nil
}

// entryFields checks a message's id, priority and fields and adds the ones Send sets itself.
func entryFields(id ID, pri Priority, fields map[string]string) (map[string]string, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	vars, err := lineFields(pri, fields)
	if err != nil {
		return nil, err
	}
	vars["MESSAGE_ID"] = string(id)
	vars["SYSLOG_IDENTIFIER"] = identifier
	return vars, nil
}

// lineFields checks a priority and the caller's fields, which must not set what Send sets.
func lineFields(pri Priority, fields map[string]string) (map[string]string, error) {
	if pri < Emerg || pri > Debug {
		return nil, fmt.Errorf("invalid journal priority %d: want 0 (emerg) to 7 (debug)", int(pri))
	}
	vars := make(map[string]string, len(fields)+2)
	for k, v := range fields {
		if err := ValidField(k); err != nil {
			return nil, err
		}
		if reserved[k] {
			return nil, fmt.Errorf("%w %q: set by Send itself", ErrInvalidField, k)
		}
		vars[k] = v
	}
	return vars, nil
}

// isJournalStream reports whether w is the stream systemd connected to the journal: it sets
// JOURNAL_STREAM to that stream's "<device>:<inode>" for the services it starts.
func isJournalStream(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	d, derr := strconv.ParseUint(dev, 10, 64)
	i, ierr := strconv.ParseUint(ino, 10, 64)
	if derr != nil || ierr != nil {
		return false
	}
	fi, err := f.Stat()
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && uint64(st.Dev) == d && uint64(st.Ino) == i
}

func writeFallback(message string) error {
	// One event, one line: embedded newlines would split it for line-based
	// readers of stderr.
	line := "bootc: " + strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(message) + "\n"
	mu.Lock()
	defer mu.Unlock()
	_, err := io.WriteString(fallback, line)
	return err
}
