package lifecycle

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestTracedSteps(t *testing.T) {
	for _, tc := range []struct {
		name, console string
		want          []string
	}{
		{"none", "[  OK  ] Stopped bootc-finalize.service\r\n", nil},
		{"interleaved", "         Stopping bootc-finalize.service...\r\nfinalize:etc\n[   81.2] systemd-shutdown[1]: Syncing\r\nfinalize:entries\r\nbootloader:write bootc-default-abc.0.conf\n",
			[]string{"finalize:etc", "finalize:entries", "bootloader:write bootc-default-abc.0.conf"}},
		{"mentioned, not traced", "note: finalize:etc is a step\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tracedSteps([]byte(tc.console)); !slices.Equal(got, tc.want) {
				t.Errorf("tracedSteps = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	e := &Env{}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"bootloader", Options{Bootloader: "lilo", Artifacts: t.TempDir(), Work: t.TempDir()}, `bootloader "lilo": want grub or systemd`},
		{"no artifacts", Options{Bootloader: "grub", Work: t.TempDir()}, "Options.Artifacts and Options.Work are required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
