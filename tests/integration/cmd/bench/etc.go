package main

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
)

// etcTrees are the three inputs of an /etc merge and what was done to them.
type etcTrees struct {
	pristine, current, next string
	entries, local, image   int
	actions                 int // of the last merge
}

// makeEtcTrees copies src into pristine, current and new under dir, then makes 50 local changes
// in current (edits, mode changes, removals, retargeted symlinks, additions) and 60 image
// changes in new (edits, half of them on locally edited files too, removals, additions).
func makeEtcTrees(src, dir string) (*etcTrees, error) {
	tr := &etcTrees{pristine: filepath.Join(dir, "pristine"), current: filepath.Join(dir, "current"), next: filepath.Join(dir, "new")}
	for _, dst := range []string{tr.pristine, tr.current, tr.next} {
		if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("copying %s: %v: %s", src, err, out)
		}
	}
	var files, links []string
	err := filepath.WalkDir(tr.pristine, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		tr.entries++
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
		return nil, err
	}
	sort.Strings(files)
	sort.Strings(links)
	// The pattern below reaches files[7*19+5] and files[len-1-9*3].
	if len(files) < 200 || len(links) < 5 {
		return nil, fmt.Errorf("%s is too small for the merge figure: %d files, %d symlinks", src, len(files), len(links))
	}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	appendTo := func(root, rel, text string) {
		f, err := os.OpenFile(filepath.Join(root, rel), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			check(err)
			return
		}
		_, err = f.WriteString(text)
		check(err)
		check(f.Close())
	}
	for i := 0; i < 20; i++ {
		appendTo(tr.current, files[i*7], "\n# local edit\n")
	}
	for i := 0; i < 10; i++ {
		check(os.Chmod(filepath.Join(tr.current, files[i*7+3]), 0o600))
	}
	for i := 0; i < 5; i++ {
		check(os.Remove(filepath.Join(tr.current, files[i*7+5])))
	}
	for i := 0; i < 5; i++ {
		p := filepath.Join(tr.current, links[i])
		check(os.Remove(p))
		check(os.Symlink("/run/local-target", p))
	}
	check(os.MkdirAll(filepath.Join(tr.current, "local.d"), 0o755))
	for i := 0; i < 10; i++ {
		check(os.WriteFile(filepath.Join(tr.current, "local.d", fmt.Sprintf("%02d.conf", i)), []byte("local\n"), 0o644))
	}
	tr.local = 20 + 10 + 5 + 5 + 10
	for i := 0; i < 40; i++ {
		appendTo(tr.next, files[i*5], "\n# new default\n")
	}
	for i := 0; i < 10; i++ {
		check(os.Remove(filepath.Join(tr.next, files[len(files)-1-i*3])))
	}
	check(os.MkdirAll(filepath.Join(tr.next, "vendor.d"), 0o755))
	for i := 0; i < 10; i++ {
		check(os.WriteFile(filepath.Join(tr.next, "vendor.d", fmt.Sprintf("%02d.conf", i)), []byte("vendor\n"), 0o644))
	}
	tr.image = 40 + 10 + 10
	if len(errs) > 0 {
		return nil, fmt.Errorf("changing the /etc copies: %w", errs[0])
	}
	return tr, nil
}

// fsType names the filesystem holding path.
func fsType(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "?"
	}
	switch st.Type {
	case 0xef53:
		return "ext4"
	case 0x01021994:
		return "tmpfs"
	case 0x58465342:
		return "xfs"
	case 0x9123683e:
		return "btrfs"
	case 0x794c7630:
		return "overlayfs"
	}
	return fmt.Sprintf("fs 0x%x", st.Type)
}
