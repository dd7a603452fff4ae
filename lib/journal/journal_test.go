package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gobootc.dev/lib/envtest"
)

// noJournal forces the fallback path and captures what it writes.
func noJournal(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	prevEnabled := enabled
	enabled = func() bool { return false }
	prevFallback := SetFallback(&buf)
	t.Cleanup(func() {
		enabled = prevEnabled
		SetFallback(prevFallback)
	})
	return &buf
}

func TestIDsAreValidAndDistinct(t *testing.T) {
	ids := map[string]ID{
		"Stage": Stage, "Switch": Switch, "Rollback": Rollback, "Finalize": Finalize,
		"FinalizeFailed": FinalizeFailed, "Fetch": Fetch, "BoundImages": BoundImages, "Cleanup": Cleanup,
		"HealthCheck": HealthCheck, "HealthGreen": HealthGreen, "HealthRed": HealthRed,
		"BootFallback": BootFallback, "BootBlessed": BootBlessed, "BootRedReboot": BootRedReboot, "BootRedStayUp": BootRedStayUp,
	}
	seen := map[ID]string{}
	for name, id := range ids {
		if err := validID(id); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if other, ok := seen[id]; ok {
			t.Errorf("%s and %s share id %s", name, other, id)
		}
		seen[id] = name
	}
	if Rollback != "26f3b1eb24464d12aa5e7b544a6b5468" {
		t.Errorf("Rollback = %s, must stay upstream's documented id", Rollback)
	}
}

func TestValidField(t *testing.T) {
	tests := []struct {
		name string
		want string // "" means valid
	}{
		{"IMAGE", ""},
		{"BOOTC_IMAGE_DIGEST", ""},
		{"A1_2", ""},
		{strings.Repeat("A", 64), ""},
		{"", "empty"},
		{"_PID", "underscore"},
		{"1ST", "digit"},
		{"image", "only A-Z"},
		{"IMAGE-REF", "only A-Z"},
		{"IMAGE REF", "only A-Z"},
		{"IMAGE=X", "only A-Z"},
		{"ÄBC", "only A-Z"},
		{strings.Repeat("A", 65), "longer than 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidField(tt.name)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("ValidField(%q) = %v, want nil", tt.name, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidField) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ValidField(%q) = %v, want ErrInvalidField mentioning %q", tt.name, err, tt.want)
			}
		})
	}
}

func TestSendRejectsBadInput(t *testing.T) {
	tests := []struct {
		name   string
		id     ID
		pri    Priority
		fields map[string]string
		want   string
	}{
		{"lowercase field", Stage, Info, map[string]string{"image": "x"}, "invalid journal field name"},
		{"protected field", Stage, Info, map[string]string{"_PID": "1"}, "underscore"},
		{"reserved MESSAGE_ID", Stage, Info, map[string]string{"MESSAGE_ID": string(Switch)}, "set by Send"},
		{"reserved MESSAGE", Stage, Info, map[string]string{"MESSAGE": "x"}, "set by Send"},
		{"reserved PRIORITY", Stage, Info, map[string]string{"PRIORITY": "3"}, "set by Send"},
		{"reserved SYSLOG_IDENTIFIER", Stage, Info, map[string]string{"SYSLOG_IDENTIFIER": "x"}, "set by Send"},
		{"short id", "7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1", Info, nil, "32 lowercase hex"},
		{"uppercase id", "6EC513DAB1C208C782228B0B35320E66", Info, nil, "32 lowercase hex"},
		{"zero id", ID(strings.Repeat("0", 32)), Info, nil, "all zero"},
		{"priority too high", Stage, 8, nil, "invalid journal priority 8"},
		{"priority negative", Stage, -1, nil, "invalid journal priority -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := noJournal(t)
			err := Send(tt.id, tt.pri, "staged", tt.fields)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Send = %v, want error mentioning %q", err, tt.want)
			}
			if out.Len() != 0 {
				t.Errorf("rejected message was still written: %q", out)
			}
		})
	}
}

func TestFallback(t *testing.T) {
	tests := []struct {
		message string
		want    string
	}{
		{"Queued for next boot: quay.io/example/os:latest", "bootc: Queued for next boot: quay.io/example/os:latest\n"},
		{"line one\nline two\r\nthree", "bootc: line one line two three\n"},
		{"", "bootc: \n"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			out := noJournal(t)
			if err := Send(Stage, Info, tt.message, map[string]string{"BOOTC_IMAGE": "x"}); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Errorf("fallback = %q, want %q", out, tt.want)
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFallbackWriteError(t *testing.T) {
	noJournal(t)
	SetFallback(failWriter{})
	err := Send(Cleanup, Info, "removed 2 deployments", nil)
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Send = %v, want the writer's error", err)
	}
}

// socketEnv makes the re-executed test binary run TestSendToJournalSocket's
// body inside its own mount namespace.
const socketEnv = "JOURNAL_TEST_SOCKET_CHILD"

// TestSendToJournalSocket exercises the real send path. go-systemd's socket
// path can only be changed at link time, so the child mounts a tmpfs on /run
// in a private mount namespace and listens at the real path,
// /run/systemd/journal/socket, without touching the host's /run.
func TestSendToJournalSocket(t *testing.T) {
	if os.Getenv(socketEnv) == "" {
		envtest.NeedRoot(t)
		cmd := exec.Command(os.Args[0], "-test.run=^TestSendToJournalSocket$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), socketEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
		out, err := cmd.CombinedOutput()
		if errors.Is(err, syscall.EPERM) {
			envtest.Missing(t, "a private mount namespace: %v", err)
		}
		if err != nil {
			t.Fatalf("child failed: %v\n%s", err, out)
		}
		// The child runs this test again and ends it the same way when the host lacks something.
		if bytes.Contains(out, []byte("--- SKIP")) {
			envtest.Missing(t, "what the child needed:\n%s", out)
		}
		if !bytes.Contains(out, []byte("--- PASS: TestSendToJournalSocket")) {
			t.Fatalf("child did not pass:\n%s", out)
		}
		return
	}

	if err := syscall.Mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"); err != nil {
		envtest.Missing(t, "a tmpfs on a private /run: %v", err)
	}
	dir := "/run/systemd/journal"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "socket"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	var stderr bytes.Buffer
	defer SetFallback(SetFallback(&stderr))

	err = Send(Rollback, Notice, "Rollback queued", map[string]string{
		"BOOTC_IMAGE":   "quay.io/example/os:latest",
		"BOOTC_DETAILS": "two\nlines",
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if stderr.Len() != 0 {
		t.Errorf("fallback written although journal socket listens: %q", stderr.String())
	}

	sock.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64<<10)
	n, err := sock.Read(buf)
	if err != nil {
		t.Fatalf("reading datagram: %v", err)
	}
	got, err := parseEntry(buf[:n])
	if err != nil {
		t.Fatalf("parsing datagram %q: %v", buf[:n], err)
	}
	want := map[string]string{
		"MESSAGE":           "Rollback queued",
		"MESSAGE_ID":        "26f3b1eb24464d12aa5e7b544a6b5468",
		"PRIORITY":          "5",
		"SYSLOG_IDENTIFIER": filepath.Base(os.Args[0]),
		"BOOTC_IMAGE":       "quay.io/example/os:latest",
		"BOOTC_DETAILS":     "two\nlines",
	}
	if len(got) != len(want) {
		t.Errorf("entry has %d fields, want %d: %q", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}

	// Report sends the entry either way, and writes the line only where the journal does not
	// already have it: not to the journal stream, but to any other output.
	stream, other := journalStream(t), tempFile(t)
	for _, w := range []*os.File{stream, other} {
		if err := Report(w, Cleanup, Info, "Garbage collection: removed 1 deployment", nil); err != nil {
			t.Fatalf("Report to %s: %v", w.Name(), err)
		}
		n, err := sock.Read(buf)
		if err != nil {
			t.Fatalf("reading the entry Report to %s sent: %v", w.Name(), err)
		}
		got, err := parseEntry(buf[:n])
		if err != nil || got["MESSAGE"] != "Garbage collection: removed 1 deployment" || got["MESSAGE_ID"] != string(Cleanup) {
			t.Errorf("entry Report to %s sent: %q, %v", w.Name(), got, err)
		}
	}
	if got := contents(t, stream); got != "" {
		t.Errorf("the journal stream also got the line: %q", got)
	}
	if got := contents(t, other); got != "Garbage collection: removed 1 deployment\n" {
		t.Errorf("other output = %q", got)
	}

	// Relay sends a check's line under the check's name, with no MESSAGE_ID, as systemd-cat -t.
	if err := Relay(stream, "10_disk.sh", Warning, "disk 93% full", map[string]string{"BOOTC_HEALTH_CHECK": "/etc/greenboot/check/required.d/10_disk.sh"}); err != nil {
		t.Fatalf("Relay: %v", err)
	}
	n, err = sock.Read(buf)
	if err != nil {
		t.Fatalf("reading the entry Relay sent: %v", err)
	}
	got, err = parseEntry(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]string{
		"MESSAGE":            "disk 93% full",
		"PRIORITY":           "4",
		"SYSLOG_IDENTIFIER":  "10_disk.sh",
		"BOOTC_HEALTH_CHECK": "/etc/greenboot/check/required.d/10_disk.sh",
	}
	if len(got) != len(want) {
		t.Errorf("relayed entry = %q, want %q", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("relayed %s = %q, want %q", k, got[k], v)
		}
	}
	if got := contents(t, stream); got != "" {
		t.Errorf("the journal stream also got the relayed line: %q", got)
	}

	// With the socket gone, Send must fall back rather than fail.
	sock.Close()
	os.Remove(filepath.Join(dir, "socket"))
	if err := Send(Stage, Info, "Queued for next boot", nil); err != nil {
		t.Fatalf("Send without journal: %v", err)
	}
	if stderr.String() != "bootc: Queued for next boot\n" {
		t.Errorf("fallback = %q", stderr.String())
	}
	// and Report writes its line to the journal stream, which then is just a file, once.
	if err := Report(stream, Cleanup, Info, "Garbage collection: removed 2 deployments", nil); err != nil {
		t.Fatalf("Report without journal: %v", err)
	}
	if got := contents(t, stream); got != "Garbage collection: removed 2 deployments\n" {
		t.Errorf("journal stream without journal = %q", got)
	}
	if stderr.String() != "bootc: Queued for next boot\n" {
		t.Errorf("Report wrote a fallback line too: %q", stderr.String())
	}
}

func tempFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// journalStream is a file that JOURNAL_STREAM names, as systemd names a service's output.
func journalStream(t *testing.T) *os.File {
	t.Helper()
	f := tempFile(t)
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	return f
}

func contents(t *testing.T, f *os.File) string {
	t.Helper()
	data, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestIsJournalStream(t *testing.T) {
	stream, other := journalStream(t), tempFile(t)
	if !isJournalStream(stream) {
		t.Error("the file JOURNAL_STREAM names is not recognised")
	}
	if isJournalStream(other) || isJournalStream(&bytes.Buffer{}) {
		t.Error("another file or a buffer taken for the journal stream")
	}
	for _, bad := range []string{"", "1", "x:y", "1:"} {
		t.Setenv("JOURNAL_STREAM", bad)
		if isJournalStream(stream) {
			t.Errorf("JOURNAL_STREAM=%q matched", bad)
		}
	}
}

// Without a journal, Report's line is the only record of the event: written once, to its
// output, with no fallback line besides it.
func TestReportWithoutJournal(t *testing.T) {
	fallback := noJournal(t)
	stream := journalStream(t)
	if err := Report(stream, Cleanup, Info, "Garbage collection: removed 1 deployment", nil); err != nil {
		t.Fatal(err)
	}
	if got := contents(t, stream); got != "Garbage collection: removed 1 deployment\n" {
		t.Errorf("output = %q", got)
	}
	if fallback.Len() != 0 {
		t.Errorf("fallback = %q", fallback)
	}
	var out bytes.Buffer
	if err := Report(&out, Cleanup, Info, "x", map[string]string{"bad": "1"}); !errors.Is(err, ErrInvalidField) || out.Len() != 0 {
		t.Errorf("Report with a bad field = %v, wrote %q", err, out.String())
	}
	if err := Report(failWriter{}, Cleanup, Info, "x", nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Report to a failing writer = %v", err)
	}
}

// Without a journal, a relayed line goes to its output under the program's name, and nowhere else.
func TestRelayWithoutJournal(t *testing.T) {
	fallback := noJournal(t)
	var out bytes.Buffer
	if err := Relay(&out, "20_app.sh", Info, "waiting for app", nil); err != nil {
		t.Fatal(err)
	}
	if out.String() != "20_app.sh: waiting for app\n" || fallback.Len() != 0 {
		t.Errorf("output = %q, fallback = %q", out.String(), fallback)
	}
	for _, bad := range []struct {
		id     string
		pri    Priority
		fields map[string]string
	}{
		{"", Info, nil},
		{"a\nb", Info, nil},
		{"x", Debug + 1, nil},
		{"x", Info, map[string]string{"SYSLOG_IDENTIFIER": "y"}},
		{"x", Info, map[string]string{"lower": "y"}},
	} {
		out.Reset()
		if err := Relay(&out, bad.id, bad.pri, "line", bad.fields); err == nil || out.Len() != 0 {
			t.Errorf("Relay(%q, %d, %v) = %v, wrote %q", bad.id, bad.pri, bad.fields, err, out.String())
		}
	}
}

// parseEntry decodes journald's native protocol: "NAME=value\n", or for
// values containing newlines "NAME\n" + little-endian uint64 size + value + "\n".
func parseEntry(b []byte) (map[string]string, error) {
	m := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, errors.New("unterminated field")
		}
		line := b[:nl]
		if name, value, ok := bytes.Cut(line, []byte("=")); ok {
			m[string(name)] = string(value)
			b = b[nl+1:]
			continue
		}
		b = b[nl+1:]
		if len(b) < 8 {
			return nil, fmt.Errorf("field %s: short size", line)
		}
		size := binary.LittleEndian.Uint64(b)
		b = b[8:]
		if uint64(len(b)) < size+1 || b[size] != '\n' {
			return nil, fmt.Errorf("field %s: bad binary value", line)
		}
		m[string(line)] = string(b[:size])
		b = b[size+1:]
	}
	return m, nil
}
