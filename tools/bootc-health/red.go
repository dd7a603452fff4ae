package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"gobootc.dev/lib/health"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
)

// red runs when redboot.target starts: a health check failed, or a unit ordered before
// boot-complete.target with OnFailure=redboot.target did. The record and the login message say
// what happens next, the red.d hooks run, and then the guarded reboot: only while the booted
// deployment is on trial with a deployment to fall back to, where the boot loader counts the
// reboot as a try (and at none left boots the other deployment). Anywhere else (no update on
// trial: steady state, the first boot after install, a fallback boot) a reboot would boot the
// same deployment again and again: the host reports RED loudly and stays up.
func (c *CLI) red(ctx context.Context, log health.Log, out, errOut io.Writer) error {
	r := c.Layout()
	plan, err := health.Load(c.Red.Root)
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(errOut, "warning: %s\n", w)
	}
	h := c.readRecord(r, record.Red, errOut)
	var notes []string
	if h.Failure() == nil {
		// No check failed (or none ran): a unit's failure brought the host here.
		h.Verdict, h.Failed = record.Red, ""
		notes = append(notes, "A unit ordered before boot-complete.target failed (systemctl --failed lists it).")
	}
	reboot, why := false, "the booted deployment is not known"
	a := &record.HealthAssessment{Action: ActionStayUp, Time: time.Now().UTC()}
	var next string
	if h.ID != "" {
		st, err := c.state(h.Stateroot, h.ID)
		if err != nil {
			why = err.Error()
		} else {
			reboot, why = st.RebootHelps()
			if st.Trial {
				left := st.TriesLeft
				a.TriesLeft = &left
			}
			if t := st.FallbackTarget(); t != nil {
				next = layout.DeploymentKargValue(t.Stateroot, t.ID)
			}
		}
	}
	note := readFallbackNote(r, errOut)
	if note != nil && !reboot {
		why = fmt.Sprintf("this boot is the fallback from %s/%s, and there is nothing better to fall back to", note.Stateroot, note.ID)
	}
	deployment := layout.DeploymentKargValue(h.Stateroot, h.ID)
	var msg string
	if reboot {
		a.Action = ActionReboot
		if *a.TriesLeft == 0 {
			msg = fmt.Sprintf("SYSTEM is UNHEALTHY. Rebooting... (deployment %s used its last try: %s boots next)", deployment, next)
		} else {
			msg = fmt.Sprintf("SYSTEM is UNHEALTHY. Rebooting... (deployment %s is on trial with %s left; then %s boots)",
				deployment, plural(*a.TriesLeft, "try", "tries"), next)
		}
	} else {
		msg = fmt.Sprintf("SYSTEM is UNHEALTHY, but a reboot would not help: %s. Manual intervention necessary.", why)
	}
	notes = append(notes, msg)
	h.Assessment = a
	if err := record.Write(r.Health(), h); err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
	}
	motd := fallbackMOTD(note) + health.MOTD(h) + strings.Join(notes, "\n") + "\n"
	if err := health.WriteMOTD(c.Red.Root, motd); err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
	}
	if err := c.keep(ctx, r, h); err != nil {
		fmt.Fprintf(errOut, "warning: keeping the health record with deployment %s: %v\n", deployment, err)
	}
	// The hooks find the record with the assessment in place, and the host is still up while
	// they run (MicroShift's red.d script reads boot_counter to see whether a fallback is next).
	env := []string{"BOOTC_HEALTH_VERDICT=" + string(record.Red), "BOOTC_HEALTH_RECORD=" + r.Health()}
	if _, err := plan.RunHooks(ctx, record.Red, env, health.Options{Timeout: c.Red.Timeout, Log: log}); err != nil {
		return err
	}
	fields := map[string]string{"DEPLOYMENT": h.ID}
	if h.Failed != "" {
		fields["BOOTC_HEALTH_CHECK"] = h.Failed
	}
	if !reboot {
		if err := journal.Report(out, journal.BootRedStayUp, journal.Emerg, msg, fields); err != nil {
			fmt.Fprintf(errOut, "warning: %v\n", err)
		}
		return nil
	}
	if err := journal.Report(out, journal.BootRedReboot, journal.Alert, msg, fields); err != nil {
		fmt.Fprintf(errOut, "warning: %v\n", err)
	}
	return rebootHost(ctx, c.Red.RebootCommand, out, errOut)
}

// rebootHost runs the reboot command.
func rebootHost(ctx context.Context, command string, out, errOut io.Writer) error {
	argv := strings.Fields(command)
	if len(argv) == 0 {
		return errors.New("no reboot command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("rebooting (%s): %w", command, err)
	}
	return nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
