package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gobootc.dev/tests/integration/vm"
)

// AllowedFailures are the units that may fail in a boot of the sample image, each with the
// reason its failure is expected there; any other failed unit fails the boot's check. None
// today: every unit the sample image starts must succeed, in every boot the tests make.
var AllowedFailures = map[string]string{}

// settleTimeout bounds the wait for systemd to finish starting the guest after its agent
// answered: under TCG the last units can take a minute or two more.
const settleTimeout = 5 * time.Minute

// CheckUnits waits until systemd has finished starting the guest and fails when a unit failed
// that AllowedFailures does not name, or the system is not running for another reason; the
// error carries the failed units' status and the boot's error messages. Every boot of the VM
// tests goes through it.
func CheckUnits(ctx context.Context, m *vm.VM) error {
	sctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	res, err := m.Shell(sctx, "systemctl is-system-running --wait; systemctl --failed --no-legend --plain --full")
	if err != nil {
		return fmt.Errorf("waiting for systemd to finish starting the guest: %w", err)
	}
	state, failed := parseFailed(string(res.Stdout))
	var unexpected []string
	for _, u := range failed {
		if _, ok := AllowedFailures[u]; !ok {
			unexpected = append(unexpected, u)
		}
	}
	if len(unexpected) == 0 && (state == "running" || state == "degraded" && len(failed) > 0) {
		return nil
	}
	script := "journalctl -b --no-pager -p err -o short-monotonic | tail -n 30"
	if len(unexpected) > 0 {
		script = "systemctl status --no-pager --full -n 20 -- '" + strings.Join(unexpected, "' '") + "'; " + script
	}
	detail := ""
	if r, err := m.Shell(ctx, script); err == nil {
		detail = strings.TrimSpace(string(r.Stdout))
	}
	if len(unexpected) > 0 {
		return fmt.Errorf("units failed: %s (the system is %q):\n%s", strings.Join(unexpected, ", "), state, detail)
	}
	return fmt.Errorf("the system is %q once started, want running (failed units: %q):\n%s", state, failed, detail)
}

// parseFailed splits the output of `systemctl is-system-running --wait` followed by
// `systemctl --failed --no-legend --plain`: the state, then one line per failed unit.
func parseFailed(out string) (state string, failed []string) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	state = strings.TrimSpace(lines[0])
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			failed = append(failed, f[0])
		}
	}
	return state, failed
}
