package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"gobootc.dev/lib/cli"
)

// ProgressVersion is the version of the progress protocol (progress-v0.schema.json) emitted
// with --progress-fd.
const ProgressVersion = "0.1.0"

// Throttling: events and redraws come at most this often while bytes flow; layer starts and ends
// are always reported.
const (
	jsonInterval = 200 * time.Millisecond
	ttyInterval  = 100 * time.Millisecond
)

type startEvent struct {
	Type    string `json:"type"`
	Version string `json:"version"`
}

type bytesEvent struct {
	Type        string         `json:"type"`
	Task        string         `json:"task"`
	Description string         `json:"description"`
	ID          string         `json:"id"`
	BytesCached int64          `json:"bytesCached"`
	Bytes       int64          `json:"bytes"`
	BytesTotal  int64          `json:"bytesTotal"`
	StepsCached int            `json:"stepsCached"`
	Steps       int            `json:"steps"`
	StepsTotal  int            `json:"stepsTotal"`
	Subtasks    []subtaskBytes `json:"subtasks"`
}

type subtaskBytes struct {
	Subtask     string `json:"subtask"`
	Description string `json:"description"`
	ID          string `json:"id"`
	BytesCached int64  `json:"bytesCached"`
	Bytes       int64  `json:"bytes"`
	BytesTotal  int64  `json:"bytesTotal"`
}

// sinks are where progress goes: JSON Lines for programs, a redrawn line for a person.
type sinks struct {
	json io.Writer
	tty  io.Writer
}

func (c *CLI) progressSinks(stderr io.Writer) sinks {
	s := sinks{json: c.Progress}
	if !c.Quiet && cli.IsTerminal(stderr) {
		s.tty = stderr
	}
	return s
}

// progress tracks the "pulling" task: bytes count every layer of the image, those already in the
// store as cached, so bytes reaches bytesTotal when the image is complete.
type progress struct {
	mu       sync.Mutex
	out      sinks
	id       string
	p        *plan
	done     []int64 // bytes read per layer
	started  []bool
	finished []bool
	steps    int
	total    int64
	fetched  int64
	begin    time.Time
	layerT   time.Time
	lastJSON time.Time
	lastTTY  time.Time
	current  int
	err      error // first write error on the progress descriptor, reported once
}

func newProgress(out sinks, id string, p *plan) *progress {
	pr := &progress{out: out, id: id, p: p, done: make([]int64, len(p.layers)),
		started: make([]bool, len(p.layers)), finished: make([]bool, len(p.layers)), begin: time.Now(), current: -1}
	for _, l := range p.layers {
		pr.total += max(l.info.Size, 0)
	}
	pr.emitJSON(startEvent{Type: "Start", Version: ProgressVersion})
	pr.mu.Lock()
	pr.event(true)
	pr.mu.Unlock()
	return pr
}

func (pr *progress) layerStart(i int) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.started[i], pr.current, pr.layerT = true, i, time.Now()
	pr.event(true)
}

func (pr *progress) add(i int, n int64) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.done[i] += n
	pr.fetched += n
	pr.event(false)
}

func (pr *progress) layerDone(i int) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.finished[i] = true
	pr.steps++
	pr.event(true)
	if pr.out.tty != nil {
		l := pr.p.layers[i]
		fmt.Fprintf(pr.out.tty, "\r\x1b[KFetched layer %s %s\n", short(l.info.Digest.String()), humanBytes(pr.done[i]))
	}
}

// finish ends the display; a failed fetch leaves the last event as it was.
func (pr *progress) finish(err error) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.out.tty != nil {
		fmt.Fprint(pr.out.tty, "\r\x1b[K")
		if err == nil && pr.fetched > 0 {
			el := time.Since(pr.begin)
			fmt.Fprintf(pr.out.tty, "Fetched %s in %s (%s/s)\n", humanBytes(pr.fetched), el.Round(time.Millisecond), humanBytes(rate(pr.fetched, el)))
		}
	}
}

// event reports the current state; force bypasses throttling. Called with mu held.
func (pr *progress) event(force bool) {
	now := time.Now()
	if pr.out.json != nil && (force || now.Sub(pr.lastJSON) >= jsonInterval) {
		pr.lastJSON = now
		ev := bytesEvent{Type: "ProgressBytes", Task: "pulling", Description: "Pulling image", ID: pr.id,
			BytesCached: pr.p.cachedBytes, Bytes: pr.p.cachedBytes, BytesTotal: pr.total,
			StepsCached: pr.p.reused, Steps: pr.p.reused, StepsTotal: len(pr.p.layers), Subtasks: []subtaskBytes{}}
		for i, l := range pr.p.layers {
			if l.dup {
				ev.Steps++
				continue
			}
			if !l.fetch {
				continue
			}
			if pr.finished[i] {
				ev.Steps++
				ev.Bytes += max(l.info.Size, pr.done[i])
			} else {
				ev.Bytes += pr.done[i]
			}
			if pr.started[i] {
				ev.Subtasks = append(ev.Subtasks, subtaskBytes{Subtask: "layer", Description: "Layer", ID: l.info.Digest.String(),
					Bytes: pr.done[i], BytesTotal: max(l.info.Size, pr.done[i])})
			}
		}
		pr.emitJSON(ev)
	}
	if pr.out.tty != nil && pr.current >= 0 && (force || now.Sub(pr.lastTTY) >= ttyInterval) {
		pr.lastTTY = now
		i := pr.current
		l := pr.p.layers[i]
		n := 0
		for j := 0; j <= i; j++ {
			if pr.p.layers[j].fetch {
				n++
			}
		}
		fmt.Fprintf(pr.out.tty, "\r\x1b[KLayer %d/%d %s %s/%s %s/s | total %s/%s %s/s",
			n, pr.p.fetchLayers, short(l.info.Digest.String()),
			humanBytes(pr.done[i]), humanBytes(max(l.info.Size, 0)), humanBytes(rate(pr.done[i], now.Sub(pr.layerT))),
			humanBytes(pr.fetched), humanBytes(pr.p.fetchBytes), humanBytes(rate(pr.fetched, now.Sub(pr.begin))))
	}
}

// emitJSON writes one JSON line. A reader that went away must not fail the fetch itself.
func (pr *progress) emitJSON(v any) {
	if pr.out.json == nil || pr.err != nil {
		return
	}
	b, err := json.Marshal(v)
	if err == nil {
		_, err = pr.out.json.Write(append(b, '\n'))
	}
	pr.err = err
}

func rate(n int64, d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(float64(n) / d.Seconds())
}

// short abbreviates a digest for the progress line.
func short(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}
