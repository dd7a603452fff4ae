package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLastLine reads the console as a terminal would show it: the last line with text, without
// the colour and cursor sequences systemd and the kernel draw with.
func TestLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "serial.log")
	long := strings.Repeat("x", 5000) + "\n"
	tests := []struct{ log, want string }{
		{"", ""},
		{"[    1.2] Linux version\r\n[  \x1b[0;32mOK\x1b[0m  ] Reached target \x1b[0;1;39mBasic System\x1b[0m.\r\n\r\n", "[  OK  ] Reached target Basic System."},
		{long + "\x1b[?25lStarting \x1b[1mfinalize\x1b[0m...\x1b[?25h\r", "Starting finalize..."},
		{"bootc-lifecycle login: \x07", "bootc-lifecycle login:"},
	}
	for _, tt := range tests {
		if err := os.WriteFile(path, []byte(tt.log), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := lastLine(path); got != tt.want {
			t.Errorf("lastLine(%q) = %q, want %q", tt.log, got, tt.want)
		}
	}
	if got := lastLine(filepath.Join(t.TempDir(), "none")); got != "" {
		t.Errorf("lastLine of a missing file = %q, want nothing", got)
	}
}

// TestSecondsAsTheSteps: the summary rounds as the steps' own messages do (lifecycle logs
// Duration.Round(time.Second)), so 16.6 s is 17s in both.
func TestSecondsAsTheSteps(t *testing.T) {
	for d, want := range map[time.Duration]string{
		16600 * time.Millisecond: "17s",
		16400 * time.Millisecond: "16s",
		70 * time.Second:         "1m10s",
	} {
		if got := seconds(d); got != want || got != d.Round(time.Second).String() {
			t.Errorf("seconds(%s) = %q, want %q", d, got, want)
		}
	}
}

// TestProgressLine: on a terminal, a silence shows the spinner line with the seconds waited and
// the console's last line; the next output erases it first, and Close leaves nothing behind.
func TestProgressLine(t *testing.T) {
	console := filepath.Join(t.TempDir(), "serial.log")
	if err := os.WriteFile(console, []byte("[  OK  ] Reached target Multi-User System.\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	n := &narrator{w: &out, tty: true, width: 80, quiet: time.Now().Add(-3 * time.Second)}
	n.Console(console)
	n.startProgress()
	time.Sleep(500 * time.Millisecond)
	n.Logf("boot 1: the guest agent answered")
	n.Close()

	got := out.String()
	line := strings.Index(got, "  3s  console: [  OK  ] Reached target Multi-User System.")
	logged := strings.Index(got, "\r\033[K   \033[2m· boot 1: the guest agent answered")
	if line < 0 || logged < line {
		t.Fatalf("want the progress line, then the erased line and the log line; got %q", got)
	}
	if rest := got[logged:]; strings.Contains(rest, "console:") {
		t.Errorf("the progress line came back within %s after the output: %q", progressAfter, rest)
	}
}
