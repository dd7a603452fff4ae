// Command bench measures bootc's fetch, stage, disk, memory and /etc-merge costs on a real
// Debian root served from a local registry, next to podman and skopeo on the same image in the
// same run, and prints the figures with their ratios and targets; with them, from the VM tests'
// artifacts, how many boots and seconds a bad update took to heal under each boot loader.
//
// It is not a test: a figure that misses its target is reported, not failed; the program exits
// non-zero only when a measurement itself could not be made. It needs root, podman, skopeo,
// docker-registry and the cached Debian root (built with mmdebstrap on first use).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/sysroottest"
)

// bench is one run: the tools, the images and what earlier figures measured for later ones.
type bench struct {
	h    *harness
	bin  string // directory of the bootc tool binaries
	work string // scratch directory, on the filesystem a sysroot would be on
	etc  string // the /etc the merge figure copies
	runs int
	ims  *images
	// e2eArtifacts is where figure 6 finds the VM lifecycle's recovery figures.
	e2eArtifacts string

	coldFetchRuns, coldStageRuns, podmanPullRuns []runStats
}

// row is one line of the table. A row with Against compares its value with that peer's;
// Target bounds the ratio and Limit the value itself.
type row struct {
	Figure  string  `json:"figure"`
	Name    string  `json:"name"`
	Value   float64 `json:"value"`
	Unit    string  `json:"unit"`
	Against string  `json:"against,omitempty"`
	Ratio   float64 `json:"ratio,omitempty"`
	Target  float64 `json:"target,omitempty"`
	Limit   float64 `json:"limit,omitempty"`
	Met     *bool   `json:"met,omitempty"`
	Note    string  `json:"note,omitempty"`
}

// figure is one measurement of the table.
type figure struct {
	title  string
	images bool // needs the images on the registry
	run    func() ([]row, error)
}

// selectFigures keeps the figures whose numbers (the first word of the title) are listed.
func selectFigures(all []figure, list string) ([]figure, error) {
	if list == "" {
		return all, nil
	}
	var out []figure
	for _, n := range strings.Split(list, ",") {
		found := false
		for _, f := range all {
			if strings.Fields(f.title)[0] == strings.TrimSpace(n) {
				out, found = append(out, f), true
			}
		}
		if !found {
			return nil, fmt.Errorf("no figure %q (there are 1 to %d)", n, len(all))
		}
	}
	return out, nil
}

// report is the JSON document the run writes.
type report struct {
	Date     time.Time `json:"date"`
	Host     string    `json:"host"`
	LoadAvg  string    `json:"loadavg"` // at the start: other work on the machine skews the figures
	Rows     []row     `json:"rows"`
	Failures []string  `json:"failures,omitempty"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == measureArg {
		os.Exit(measureChild(os.Args[2:]))
	}
	os.Exit(run())
}

func run() int {
	bin := flag.String("bin", os.Getenv("BOOTC_TEST_BIN"), "directory with bootc-fetch and bootc-stage (default: build them)")
	out := flag.String("out", os.Getenv("BOOTC_BENCH_OUT"), "where to write the figures as JSON (default: a temporary file)")
	runs := flag.Int("runs", 3, "runs of each tool in the cold fetch figure")
	large := flag.Int("large-mb", 200, "MiB of incompressible data the larger image of the memory figure adds")
	etc := flag.String("etc", "/etc", "the /etc the merge figure copies")
	workBase := flag.String("work", os.TempDir(), "where scratch directories go (the sysroot filesystem)")
	only := flag.String("only", "", "comma-separated figure numbers to run (default: all)")
	e2e := flag.String("e2e-artifacts", os.Getenv("BOOTC_TEST_ARTIFACTS"), "where make e2e left its artifacts, for figure 6 (default "+defaultE2EArtifacts+")")
	flag.Parse()
	if flag.NArg() > 0 || *runs < 1 || *large < 1 {
		fmt.Fprintln(os.Stderr, "usage: bench [-bin DIR] [-out FILE] [-runs N] [-large-mb N] [-etc DIR] [-work DIR] [-only N,...] [-e2e-artifacts DIR]")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: needs root (podman's overlay store, ownership of the Debian root)")
		return 2
	}
	work, err := os.MkdirTemp(*workBase, "bootc-bench-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: creating the scratch directory: %v\n", err)
		return 1
	}
	h := &harness{dir: work}
	b := &bench{h: h, work: work, etc: *etc, runs: *runs, e2eArtifacts: *e2e}
	if b.e2eArtifacts == "" {
		b.e2eArtifacts = defaultE2EArtifacts
	}
	defer func() {
		h.close()
		removeTree(work)
	}()

	start := time.Now()
	var rep report
	rep.Date = start.UTC()
	rep.Host, _ = os.Hostname()
	rep.LoadAvg = loadAvg()
	figures := []figure{
		{"1 cold fetch+stage", true, b.coldFetch},
		{"2 update, one small layer", true, b.update},
		{"3 disk, two rebuilt deployments", true, b.disk},
		{"4 peak memory", true, b.memory},
		{"5 /etc merge", false, b.etcMerge},
		{"6 bad update recovery (VM, from make e2e)", false, b.recovery},
	}
	if figures, err = selectFigures(figures, *only); err != nil {
		fmt.Fprintf(os.Stderr, "bench: -only: %v\n", err)
		return 2
	}
	if err := catch(func() error { return b.setup(*bin, figures, *large<<20) }); err != nil {
		fmt.Fprintf(os.Stderr, "bench: setup: %v\n", err)
		return 1
	}
	runFigures(figures, &rep)
	printTable(os.Stdout, rep)
	fmt.Printf("\nrun took %s; load average at the start %s, at the end %s\n", time.Since(start).Round(time.Second), rep.LoadAvg, loadAvg())
	path, err := writeReport(*out, rep)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Printf("figures written to %s\n", path)
	if len(rep.Failures) > 0 || h.failed {
		return 1
	}
	return 0
}

// setup gets the tool binaries from bin (or builds them) and, when a figure needs them, builds
// and pushes the images, the larger one with large bytes of incompressible data.
func (b *bench) setup(bin string, figures []figure, large int) error {
	// sysroottest.Tools takes the binaries from $BOOTC_TEST_BIN when they are all there.
	os.Setenv("BOOTC_TEST_BIN", bin)
	var err error
	if b.bin, err = sysroottest.Tools(filepath.Join(b.work, "bin"), "bootc-fetch", "bootc-stage"); err != nil {
		return err
	}
	for _, f := range figures {
		if f.images {
			progress("building and pushing the images (Debian %s root from %s)", fetchtest.DebianSuite, fetchtest.CacheDir())
			b.ims, err = buildImages(b.h, b.work, large)
			return err
		}
	}
	return nil
}

// runFigures runs each figure, adding its judged rows to rep, or its failure.
func runFigures(figures []figure, rep *report) {
	for _, f := range figures {
		progress("figure %s", f.title)
		t := time.Now()
		rows, err := func() (rows []row, err error) {
			err = catch(func() error { rows, err = f.run(); return err })
			return rows, err
		}()
		if err != nil {
			rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %v", f.title, err))
			fmt.Fprintf(os.Stderr, "bench: figure %s: %v\n", f.title, err)
			continue
		}
		for i := range rows {
			rows[i].Figure = f.title
			rows[i].judge()
		}
		rep.Rows = append(rep.Rows, rows...)
		progress("figure %s took %s", f.title, time.Since(t).Round(100*time.Millisecond))
	}
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// judge sets Met from Target or Limit.
func (r *row) judge() {
	switch {
	case r.Target > 0 && r.Against != "":
		ok := r.Ratio <= r.Target
		r.Met = &ok
	case r.Limit > 0:
		ok := r.Value < r.Limit
		r.Met = &ok
	}
}

func printTable(w io.Writer, rep report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tmeasurement\tvalue\tagainst\tratio\ttarget\t\tnote")
	last := ""
	for _, r := range rep.Rows {
		fig := r.Figure
		if fig == last {
			fig = ""
		}
		last = r.Figure
		ratio, target, verdict := "", "", ""
		if r.Against != "" {
			ratio = fmt.Sprintf("%.3f×", r.Ratio)
		}
		switch {
		case r.Target > 0:
			target = fmt.Sprintf("≤ %.2f×", r.Target)
		case r.Limit > 0:
			target = "< " + valueText(r.Limit, r.Unit)
		}
		if r.Met != nil {
			verdict = map[bool]string{true: "met", false: "MISSED"}[*r.Met]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", fig, r.Name, valueText(r.Value, r.Unit), r.Against, ratio, target, verdict, r.Note)
	}
	tw.Flush()
	for _, f := range rep.Failures {
		fmt.Fprintf(w, "FAILED: %s\n", f)
	}
}

func valueText(v float64, unit string) string {
	switch unit {
	case "B":
		return bytesText(int64(v))
	case "s":
		return fmt.Sprintf("%.2f s", v)
	case "ms":
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// writeReport writes the figures as JSON to path, or to a new temporary file when path is
// empty, and returns where.
func writeReport(path string, rep report) (string, error) {
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding the figures: %w", err)
	}
	data = append(data, '\n')
	if path == "" {
		f, err := os.CreateTemp("", "bootc-bench-*.json")
		if err != nil {
			return "", fmt.Errorf("writing the figures: %w", err)
		}
		path = f.Name()
		f.Close()
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("writing the figures: %w", err)
	}
	return path, nil
}
