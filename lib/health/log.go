package health

import (
	"fmt"
	"io"
	"strings"
	"unicode"

	"gobootc.dev/lib/journal"
)

// JournalLog sends a run's messages and its checks' output to the journal: the messages with
// their MESSAGE_IDs, each output line under its check's name as greenboot's `systemd-cat -t`
// does. Messages are lines of Out as well and output lines of Err ("name: line"), unless that
// writer is the journal stream already; without a journal, Out and Err are where they go.
type JournalLog struct {
	Out, Err io.Writer
}

// Message sends one of the run's messages.
func (l JournalLog) Message(id journal.ID, pri journal.Priority, text string, fields map[string]string) {
	if err := journal.Report(l.Out, id, pri, text, fields); err != nil {
		fmt.Fprintf(l.Err, "warning: %v\n", err)
	}
}

// Output sends one line a check wrote.
func (l JournalLog) Output(name string, pri journal.Priority, line string, fields map[string]string) {
	// A file name may hold any byte but '/'; an identifier is one line.
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, name)
	if err := journal.Relay(l.Err, name, pri, line, fields); err != nil {
		fmt.Fprintf(l.Err, "warning: %v\n", err)
	}
}
