package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gobootc.dev/lib/health"
)

// run prints the checks, then the green.d and red.d hooks, each on a line: kind, type, path,
// and what else applies (a units list's units, disabled, invalid).
func (l *ListCmd) run(out, errOut io.Writer) error {
	plan, err := health.Load(l.Root)
	if err != nil {
		return err
	}
	for _, w := range plan.Warnings {
		fmt.Fprintf(errOut, "warning: %s\n", w)
	}
	all := append(append(append([]health.Check{}, plan.Checks...), plan.Green...), plan.Red...)
	if len(all) == 0 {
		fmt.Fprintf(errOut, "No health checks or hooks under %s.\n", l.Root)
		return nil
	}
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, c := range all {
		var notes []string
		if c.Type == health.Units && c.Invalid == nil {
			notes = append(notes, strings.Join(c.Units, " "))
		}
		if c.Invalid != nil {
			notes = append(notes, "invalid: "+c.Invalid.Error())
		}
		if c.Disabled {
			notes = append(notes, "disabled by "+health.DisabledKey)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Kind, c.Type, c.Path, strings.Join(notes, "; "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The notes column is empty on most lines: no padding after the path there.
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		if line != "" {
			if _, err := io.WriteString(out, strings.TrimRight(line, " \n")+"\n"); err != nil {
				return err
			}
		}
	}
	return nil
}
