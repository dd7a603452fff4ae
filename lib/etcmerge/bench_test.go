package etcmerge

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

// benchTrees copies this machine's /etc into pristine, current and new, then applies 50
// local changes to current and 60 image changes to new, some on the same paths.
func benchTrees(b *testing.B) trees {
	b.Helper()
	base := b.TempDir()
	tr := trees{
		pristine: filepath.Join(base, "pristine"),
		current:  filepath.Join(base, "current"),
		next:     filepath.Join(base, "new"),
		out:      filepath.Join(base, "out"),
	}
	for _, dst := range []string{tr.pristine, tr.current, tr.next} {
		if out, err := exec.Command("cp", "-a", "/etc", dst).CombinedOutput(); err != nil {
			b.Skipf("cannot copy /etc: %v: %s", err, out)
		}
	}
	var files, links []string
	err := filepath.WalkDir(tr.pristine, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(tr.pristine, p)
		switch {
		case d.Type().IsRegular():
			files = append(files, rel)
		case d.Type()&fs.ModeSymlink != 0:
			links = append(links, rel)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	sort.Strings(files)
	sort.Strings(links)
	if len(files) < 200 || len(links) < 10 {
		b.Skipf("/etc too small for a realistic benchmark: %d files, %d symlinks", len(files), len(links))
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	appendTo := func(root, rel, text string) {
		fh, err := os.OpenFile(filepath.Join(root, rel), os.O_WRONLY|os.O_APPEND, 0)
		must(err)
		_, err = fh.WriteString(text)
		must(err)
		must(fh.Close())
	}
	// Local changes: 20 edits, 10 chmods, 5 removals, 5 retargeted symlinks, 10 additions.
	for i := 0; i < 20; i++ {
		appendTo(tr.current, files[i*7], "\n# local edit\n")
	}
	for i := 0; i < 10; i++ {
		must(os.Chmod(filepath.Join(tr.current, files[i*7+3]), 0o600))
	}
	for i := 0; i < 5; i++ {
		must(os.Remove(filepath.Join(tr.current, files[i*7+5])))
	}
	for i := 0; i < 5; i++ {
		p := filepath.Join(tr.current, links[i])
		must(os.Remove(p))
		must(os.Symlink("/run/local-target", p))
	}
	must(os.MkdirAll(filepath.Join(tr.current, "local.d"), 0o755))
	for i := 0; i < 10; i++ {
		must(os.WriteFile(filepath.Join(tr.current, "local.d", fmt.Sprintf("%02d.conf", i)), []byte("local\n"), 0o644))
	}
	// Image changes: 40 edits (every other one also edited locally), 10 removals, 10 additions.
	for i := 0; i < 40; i++ {
		appendTo(tr.next, files[i*5], "\n# new default\n")
	}
	for i := 0; i < 10; i++ {
		must(os.Remove(filepath.Join(tr.next, files[len(files)-1-i*3])))
	}
	must(os.MkdirAll(filepath.Join(tr.next, "vendor.d"), 0o755))
	for i := 0; i < 10; i++ {
		must(os.WriteFile(filepath.Join(tr.next, "vendor.d", fmt.Sprintf("%02d.conf", i)), []byte("vendor\n"), 0o644))
	}
	return tr
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
