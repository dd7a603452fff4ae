// Package etcmergetest builds realistic inputs for the /etc merge, for benchmarks: three copies of
// a real /etc with a fixed set of local and image changes.
package etcmergetest

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
)

// Trees are the three inputs of a merge and counts of what is in and was done to them.
type Trees struct {
	Pristine, Current, New string
	Entries, Files, Links  int // in the copied tree
	Local, Image           int // changes made to Current and to New
}

// Make copies src into pristine, current and new under dir, then makes 50 local changes in current
// (20 edits, 10 mode changes, 5 removals, 5 retargeted symlinks, 10 additions) and 60 image
// changes in new (40 edits, every other one on a locally edited file too, 10 removals, 10
// additions). src needs at least 200 regular files and 5 symlinks.
func Make(src, dir string) (*Trees, error) {
	tr := &Trees{Pristine: filepath.Join(dir, "pristine"), Current: filepath.Join(dir, "current"), New: filepath.Join(dir, "new")}
	for _, dst := range []string{tr.Pristine, tr.Current, tr.New} {
		if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("copying %s: %v: %s", src, err, out)
		}
	}
	entries, files, links, err := listTree(tr.Pristine)
	if err != nil {
		return nil, err
	}
	tr.Entries, tr.Files, tr.Links = entries, len(files), len(links)
	// The pattern below reaches files[7*19+5] and files[len-1-9*3], and links[4].
	if len(files) < 200 || len(links) < 5 {
		return nil, fmt.Errorf("%s is too small for a realistic merge: %d files, %d symlinks", src, len(files), len(links))
	}
	var e edits
	tr.Local = e.local(tr.Current, files, links)
	tr.Image = e.image(tr.New, files)
	if e.first != nil {
		return nil, fmt.Errorf("changing the /etc copies: %w", e.first)
	}
	return tr, nil
}

// listTree counts the entries under root and lists its regular files and symlinks, sorted,
// relative to it.
func listTree(root string) (entries int, files, links []string, err error) {
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		entries++
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type().IsRegular():
			files = append(files, rel)
		case d.Type()&fs.ModeSymlink != 0:
			links = append(links, rel)
		}
		return nil
	})
	if err != nil {
		return 0, nil, nil, err
	}
	sort.Strings(files)
	sort.Strings(links)
	return entries, files, links, nil
}

// edits changes a copy of /etc, remembering the first error.
type edits struct{ first error }

func (e *edits) check(err error) {
	if err != nil && e.first == nil {
		e.first = err
	}
}

func (e *edits) appendTo(root, rel, text string) {
	f, err := os.OpenFile(filepath.Join(root, rel), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		e.check(err)
		return
	}
	_, err = f.WriteString(text)
	e.check(err)
	e.check(f.Close())
}

// local makes Make's local changes in root and returns their number.
func (e *edits) local(root string, files, links []string) int {
	for i := 0; i < 20; i++ {
		e.appendTo(root, files[i*7], "\n# local edit\n")
	}
	for i := 0; i < 10; i++ {
		e.check(os.Chmod(filepath.Join(root, files[i*7+3]), 0o600))
	}
	for i := 0; i < 5; i++ {
		e.check(os.Remove(filepath.Join(root, files[i*7+5])))
	}
	for i := 0; i < 5; i++ {
		p := filepath.Join(root, links[i])
		e.check(os.Remove(p))
		e.check(os.Symlink("/run/local-target", p))
	}
	e.check(os.MkdirAll(filepath.Join(root, "local.d"), 0o755))
	for i := 0; i < 10; i++ {
		e.check(os.WriteFile(filepath.Join(root, "local.d", fmt.Sprintf("%02d.conf", i)), []byte("local\n"), 0o644))
	}
	return 20 + 10 + 5 + 5 + 10
}

// image makes Make's image changes in root and returns their number.
func (e *edits) image(root string, files []string) int {
	for i := 0; i < 40; i++ {
		e.appendTo(root, files[i*5], "\n# new default\n")
	}
	for i := 0; i < 10; i++ {
		e.check(os.Remove(filepath.Join(root, files[len(files)-1-i*3])))
	}
	e.check(os.MkdirAll(filepath.Join(root, "vendor.d"), 0o755))
	for i := 0; i < 10; i++ {
		e.check(os.WriteFile(filepath.Join(root, "vendor.d", fmt.Sprintf("%02d.conf", i)), []byte("vendor\n"), 0o644))
	}
	return 40 + 10 + 10
}
