package store

import (
	"archive/tar"
	"fmt"
	"path"
	"sort"
	"strings"
)

const (
	// pathMax is Linux's PATH_MAX less the terminating NUL: longer paths could
	// not be used on the deployed system anyway.
	pathMax = 4095
	// nameMax is the longest single component Linux filesystems accept.
	nameMax = 255

	whiteoutPrefix = ".wh."
	// whiteoutMeta prefixes names reserved by the whiteout scheme; only the
	// opaque marker is defined by OCI, the rest are aufs bookkeeping.
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"

	paxXattr = "SCHILY.xattr."
	// maxID is the largest usable uid/gid: (uint32)-1 means "no change" to chown.
	maxID = 1<<32 - 2
)

// errSparse refuses sparse members: their expanded size is not bounded by the
// stream length, so a small layer could fill the disk, and no OCI layer
// producer writes them.
var errSparse = fmt.Errorf("sparse files are not supported")

// cleanPath turns a tar member name into a canonical relative path. A leading
// "/" is dropped, as tar does, and "." components and repeated slashes vanish.
// Any ".." component is refused, even one that would stay inside the tree
// ("a/../b"): resolving it lexically can disagree with how the kernel resolves
// it once a component is a symlink, and no layer producer emits it.
func cleanPath(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: path contains a NUL byte", ErrUnsafeEntry)
	}
	var comps []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("%w: path %q contains \"..\"", ErrUnsafeEntry, name)
		}
		if len(c) > nameMax {
			return "", fmt.Errorf("path component longer than %d bytes", nameMax)
		}
		comps = append(comps, c)
	}
	if len(comps) == 0 {
		return ".", nil
	}
	p := strings.Join(comps, "/")
	if len(p) > pathMax {
		return "", fmt.Errorf("path longer than %d bytes", pathMax)
	}
	return p, nil
}

func checkSymlinkTarget(target string) error {
	switch {
	case target == "":
		return fmt.Errorf("symlink has an empty target")
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("symlink target contains a NUL byte")
	case len(target) > pathMax:
		return fmt.Errorf("symlink target longer than %d bytes", pathMax)
	}
	return nil
}

// xattrAllowed decides which extended attributes a layer may carry. Overlay
// attributes are dropped: a deployment serves as an overlay lower directory
// (usr-overlay), where trusted.overlay.* and user.overlay.* would redirect
// lookups or fake whiteouts. Other trusted.* and system.* names are kernel or
// admin private and have no business in an image, except POSIX ACLs, whose
// encoding the kernel validates.
func xattrAllowed(name string) bool {
	switch {
	case strings.HasPrefix(name, "user.overlay."):
		return false
	case strings.HasPrefix(name, "user."), strings.HasPrefix(name, "security."):
		return true
	case name == "system.posix_acl_access", name == "system.posix_acl_default":
		return true
	}
	return false
}

// headerEntry converts a tar header into an index entry. It returns nil and a
// warning for members that are skipped, and an error for members that are
// refused. The caller fills in Object and Size for regular files.
func headerEntry(hdr *tar.Header) (e *Entry, warnings []string, err error) {
	p, err := cleanPath(hdr.Name)
	if err != nil {
		return nil, nil, err
	}
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	for _, c := range strings.Split(dir, "/") {
		if strings.HasPrefix(c, whiteoutPrefix) {
			return nil, nil, fmt.Errorf("%w: whiteout name %q used as a directory", ErrUnsafeEntry, c)
		}
	}
	if strings.HasPrefix(base, whiteoutPrefix) {
		return whiteoutEntry(hdr, dir, base)
	}

	switch hdr.Typeflag {
	case tar.TypeLink:
		return hardlinkEntry(p, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return nil, []string{fmt.Sprintf("skipping %s %q: device nodes and fifos are never created", typeName(hdr.Typeflag), hdr.Name)}, nil
	}
	e = &Entry{Path: p}
	if e.Type, e.Link, err = memberType(hdr); err != nil {
		return nil, nil, err
	}
	if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
		return nil, nil, fmt.Errorf("owner %d:%d out of range", hdr.Uid, hdr.Gid)
	}
	e.UID, e.GID = uint32(hdr.Uid), uint32(hdr.Gid)
	// Some producers put the file type bits into the mode field too; only the
	// permission and set-id/sticky bits are meaningful.
	e.Mode = uint32(hdr.Mode) & 0o7777
	if e.Xattrs, warnings, err = memberXattrs(hdr); err != nil {
		return nil, nil, err
	}
	return e, warnings, rootCheck(e)
}

// whiteoutEntry converts a member named base in dir, a whiteout name: an opaque marker, a
// reserved name (skipped) or the whiteout of one entry.
func whiteoutEntry(hdr *tar.Header, dir, base string) (*Entry, []string, error) {
	switch {
	case base == whiteoutOpaque:
		return &Entry{Path: dir, Type: TypeOpaque}, nil, nil
	case strings.HasPrefix(base, whiteoutMeta):
		return nil, []string{fmt.Sprintf("skipping reserved whiteout name %q", hdr.Name)}, nil
	}
	victim := strings.TrimPrefix(base, whiteoutPrefix)
	if victim == "" || victim == "." || victim == ".." {
		return nil, nil, fmt.Errorf("%w: whiteout %q names no entry", ErrUnsafeEntry, base)
	}
	return &Entry{Path: path.Join(dir, victim), Type: TypeWhiteout}, nil, nil
}

// hardlinkEntry converts a hardlink member at p. A hardlink shares its target's inode: its
// own metadata means nothing.
func hardlinkEntry(p string, hdr *tar.Header) (*Entry, []string, error) {
	l, err := cleanPath(hdr.Linkname)
	if err != nil {
		return nil, nil, fmt.Errorf("hardlink target: %w", err)
	}
	if l == "." {
		return nil, nil, fmt.Errorf("%w: hardlink to the root directory", ErrUnsafeEntry)
	}
	e := &Entry{Path: p, Type: TypeHardlink, Link: l}
	return e, nil, rootCheck(e)
}

// memberType is the entry type of a file, directory or symlink member, and a symlink's
// target; sparse files and other types are refused.
func memberType(hdr *tar.Header) (EntryType, string, error) {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		for k := range hdr.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse.") {
				return "", "", errSparse
			}
		}
		return TypeFile, "", nil
	case tar.TypeGNUSparse:
		return "", "", errSparse
	case tar.TypeDir:
		return TypeDir, "", nil
	case tar.TypeSymlink:
		if err := checkSymlinkTarget(hdr.Linkname); err != nil {
			return "", "", err
		}
		return TypeSymlink, hdr.Linkname, nil
	}
	return "", "", fmt.Errorf("unsupported tar member type %q", hdr.Typeflag)
}

// memberXattrs are the extended attributes a member's PAX records carry that xattrAllowed
// keeps (nil for none), with a warning for each one dropped.
func memberXattrs(hdr *tar.Header) (map[string][]byte, []string, error) {
	keys := make([]string, 0, len(hdr.PAXRecords))
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattr) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys) // keeps warnings in a stable order
	var xattrs map[string][]byte
	var warnings []string
	for _, k := range keys {
		name, v := strings.TrimPrefix(k, paxXattr), hdr.PAXRecords[k]
		if name == "" || strings.IndexByte(name, 0) >= 0 {
			return nil, nil, fmt.Errorf("malformed xattr name %q", name)
		}
		if !xattrAllowed(name) {
			warnings = append(warnings, fmt.Sprintf("dropping xattr %q of %q", name, hdr.Name))
			continue
		}
		if xattrs == nil {
			xattrs = make(map[string][]byte)
		}
		xattrs[name] = []byte(v)
	}
	return xattrs, warnings, nil
}

func rootCheck(e *Entry) error {
	if e.Path == "." && e.Type != TypeDir {
		return fmt.Errorf("%w: the root can only be a directory, not a %s", ErrUnsafeEntry, e.Type)
	}
	return nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("type %q", t)
}
