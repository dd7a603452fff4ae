package main

import (
	"fmt"
	"syscall"

	"gobootc.dev/lib/etcmerge/etcmergetest"
)

// etcTrees are the three inputs of an /etc merge, what was done to them, and the size of the
// last merge.
type etcTrees struct {
	*etcmergetest.Trees
	actions int
}

// makeEtcTrees copies src into pristine, current and new under dir with the standard set of
// local and image changes.
func makeEtcTrees(src, dir string) (*etcTrees, error) {
	tr, err := etcmergetest.Make(src, dir)
	if err != nil {
		return nil, err
	}
	return &etcTrees{Trees: tr}, nil
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
