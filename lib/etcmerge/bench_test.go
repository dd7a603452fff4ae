package etcmerge

import (
	"fmt"
	"path/filepath"
	"testing"

	"gobootc.dev/lib/etcmerge/etcmergetest"
)

// benchTrees copies this machine's /etc into pristine, current and new, then applies 50
// local changes to current and 60 image changes to new, some on the same paths.
func benchTrees(b *testing.B) trees {
	b.Helper()
	base := b.TempDir()
	m, err := etcmergetest.Make("/etc", base)
	// Benchmarks measure this host and CI does not run them: plain skips.
	if err != nil {
		b.Skipf("cannot build the benchmark's trees: %v", err)
	}
	if m.Links < 10 {
		b.Skipf("/etc too small for a realistic benchmark: %d files, %d symlinks", m.Files, m.Links)
	}
	return trees{pristine: m.Pristine, current: m.Current, next: m.New, out: filepath.Join(base, "out")}
}

func BenchmarkMerge(b *testing.B) {
	tr := benchTrees(b)
	plan, err := Plan(tr.pristine, tr.current, tr.next)
	if err != nil {
		b.Fatal(err)
	}
	if len(plan.Conflicts) > 0 {
		b.Fatalf("unexpected conflicts: %v", plan.Conflicts)
	}
	b.Logf("%d actions (%s), %d warnings", len(plan.Actions), plan.Summary(), len(plan.Warnings))
	// Outputs are left for the TempDir cleanup: deleting them between iterations makes
	// the filesystem's deferred work (journal, discard) land inside the measured time.
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Merge(tr.pristine, tr.current, tr.next, fmt.Sprintf("%s%d", tr.out, i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPlan(b *testing.B) {
	tr := benchTrees(b)
	for b.Loop() {
		if _, err := Plan(tr.pristine, tr.current, tr.next); err != nil {
			b.Fatal(err)
		}
	}
}
