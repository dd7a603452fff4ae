// Command testsummary renders `go test -json` as go test prints without -v (a line per package,
// the logs of failed tests only), then ends with the tests that were skipped and why, so that a
// green run shows what it did not test:
//
//	go test -json ./... | go run scripts/testsummary.go [-o summary.txt]
//
// It exits 0 once its input ends; the caller takes go test's status (make runs it under
// `set -o pipefail`). -o also writes the closing summary to a file.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string // build-output and build-fail events name the package this way
}

// line is one output line of a package, kept until the package ends.
type line struct {
	test, text string
}

// pkg holds a running package's output and the result of each of its tests.
type pkg struct {
	lines  []line
	result map[string]string // test name → run (until it ends), pass, fail or skip
}

type skip struct {
	pkg, test string
	reason    []string
}

type printer struct {
	out     io.Writer
	pkgs    map[string]*pkg
	skipped []skip
	failed  []string // "pkg Test", or "pkg" when the package failed outside any test
	anyFail bool
}

func main() {
	summaryFile := flag.String("o", "", "also write the closing summary to this file")
	flag.Parse()
	out := bufio.NewWriter(os.Stdout)
	p := &printer{out: out, pkgs: map[string]*pkg{}}
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	for {
		text, err := in.ReadString('\n')
		if text != "" {
			p.handle(text)
			// Each finished package is shown at once, as go test shows it.
			out.Flush()
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "testsummary: reading go test's output: %v\n", err)
			os.Exit(1)
		}
	}
	summary := p.summary()
	fmt.Fprint(out, summary)
	if p.anyFail {
		// go test's own closing line when anything failed.
		fmt.Fprintln(out, "FAIL")
	}
	out.Flush()
	if *summaryFile != "" {
		if err := os.WriteFile(*summaryFile, []byte(summary), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "testsummary: writing the summary: %v\n", err)
			os.Exit(1)
		}
	}
}

func (p *printer) handle(text string) {
	var e event
	if !strings.HasPrefix(text, "{") || json.Unmarshal([]byte(text), &e) != nil {
		fmt.Fprint(p.out, text) // not an event: go test's own message
		return
	}
	switch e.Action {
	case "build-output":
		fmt.Fprint(p.out, e.Output)
		return
	case "build-fail":
		return
	}
	k := p.pkgs[e.Package]
	if k == nil {
		k = &pkg{result: map[string]string{}}
		p.pkgs[e.Package] = k
	}
	switch e.Action {
	case "output":
		k.lines = append(k.lines, line{e.Test, e.Output})
	case "run":
		k.result[e.Test] = e.Action
	case "pass", "fail", "skip":
		if e.Test != "" {
			k.result[e.Test] = e.Action
			return
		}
		p.finish(e.Package, k, e.Action == "fail")
		delete(p.pkgs, e.Package)
	}
}

// finish prints a package that ended: its closing line, and when it failed the output of the
// tests that failed or never finished, and of the package itself.
func (p *printer) finish(name string, k *pkg, failed bool) {
	var testFailed bool
	if failed {
		p.printFailed(k)
	} else {
		for _, l := range k.lines {
			// Without -v go test drops the binary's closing PASS.
			if l.test == "" && strings.TrimSpace(l.text) != "PASS" {
				fmt.Fprint(p.out, l.text)
			}
		}
	}
	var tests []string
	for t := range k.result {
		tests = append(tests, t)
	}
	slices.Sort(tests)
	for _, t := range tests {
		switch k.result[t] {
		case "skip":
			p.skipped = append(p.skipped, skip{name, t, reason(k.lines, t)})
		case "fail":
			testFailed = true
			p.failed = append(p.failed, name+" "+t)
		case "run":
			testFailed = true
			p.failed = append(p.failed, name+" "+t+" (did not finish)")
		}
	}
	if failed {
		p.anyFail = true
		if !testFailed {
			p.failed = append(p.failed, name+" (no test failed: a build failure or a crash outside the tests)")
		}
	}
}

// printFailed prints a failed package's output as go test does without -v: each failed test's
// "--- FAIL" line, then what the test logged (-json streams the logs first), and the output of
// tests that never finished (a panic, a timeout) before the package's closing lines.
func (p *printer) printFailed(k *pkg) {
	pending := map[string][]string{} // a test's lines not printed yet
	var order []string               // tests in the order their output began
	shown := map[string]bool{}       // the test's --- FAIL line is out: print its lines at once
	flushUnfinished := func() {
		for _, t := range order {
			for _, text := range pending[t] {
				fmt.Fprint(p.out, text)
			}
			delete(pending, t)
		}
		order = nil
	}
	for _, l := range k.lines {
		switch r := k.result[l.test]; {
		case l.test == "":
			if closing(l.text) {
				flushUnfinished()
			}
			fmt.Fprint(p.out, l.text)
		case r == "pass" || r == "skip" || framing(l.text):
		case shown[l.test]:
			fmt.Fprint(p.out, l.text)
		case strings.HasPrefix(strings.TrimLeft(l.text, " "), "--- FAIL"):
			fmt.Fprint(p.out, l.text)
			for _, text := range pending[l.test] {
				fmt.Fprint(p.out, text)
			}
			delete(pending, l.test)
			shown[l.test] = true
		default:
			if _, ok := pending[l.test]; !ok {
				order = append(order, l.test)
			}
			pending[l.test] = append(pending[l.test], l.text)
		}
	}
	flushUnfinished()
}

// closing tells the package's result lines ("FAIL", "FAIL\tpkg\t1.2s") from other package output.
func closing(text string) bool {
	return text == "FAIL\n" || strings.HasPrefix(text, "FAIL\t")
}

// framing tells the lines -json adds around each test's output, which go test without -v does
// not print, from the test's own output.
func framing(text string) bool {
	for _, prefix := range []string{"=== RUN", "=== PAUSE", "=== CONT", "=== NAME", "--- PASS", "--- SKIP"} {
		if strings.HasPrefix(strings.TrimLeft(text, " "), prefix) {
			return true
		}
	}
	return false
}

// reason is what a skipped test printed, its skip message included.
func reason(lines []line, test string) []string {
	var r []string
	for _, l := range lines {
		if l.test == test && !framing(l.text) {
			r = append(r, strings.TrimSpace(l.text))
		}
	}
	return r
}

func (p *printer) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nskipped: %d\n", len(p.skipped))
	for _, s := range p.skipped {
		fmt.Fprintf(&b, "  %s %s\n", s.pkg, s.test)
		for _, r := range s.reason {
			fmt.Fprintf(&b, "      %s\n", r)
		}
	}
	if len(p.failed) > 0 {
		fmt.Fprintf(&b, "failed: %d\n", len(p.failed))
		for _, f := range p.failed {
			fmt.Fprintf(&b, "  %s\n", f)
		}
	}
	return b.String()
}
