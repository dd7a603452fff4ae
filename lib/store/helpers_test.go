package store

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// capNetRawEP is security.capability as setcap writes it for cap_net_raw+ep:
// struct vfs_cap_data revision 2, little endian: magic_etc =
// VFS_CAP_REVISION_2 (0x02000000) | VFS_CAP_FLAGS_EFFECTIVE (1), then
// {permitted, inheritable} for capabilities 0-31 and 32-63. CAP_NET_RAW is 13.
var capNetRawEP = []byte{
	0x01, 0x00, 0x00, 0x02,
	0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
}

// tent describes one tar member for tests.
type tent struct {
	name     string
	typ      byte // tar.TypeReg when zero
	mode     int64
	uid, gid int
	body     string
	link     string
	xattrs   map[string]string
}

func dir(name string) tent             { return tent{name: name, typ: tar.TypeDir} }
func file(name, body string) tent      { return tent{name: name, body: body} }
func symlink(name, target string) tent { return tent{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) tent {
	return tent{name: name, typ: tar.TypeLink, link: target}
}

func layerTar(t testing.TB, ents ...tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		hdr := &tar.Header{
			Name:     e.name,
			Typeflag: e.typ,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			Linkname: e.link,
			ModTime:  time.Unix(1700000000, 0),
			Format:   tar.FormatPAX,
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if len(e.xattrs) > 0 {
			hdr.PAXRecords = make(map[string]string)
			for k, v := range e.xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("writing tar header %q: %v", e.name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				t.Fatalf("writing tar body %q: %v", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func mustImport(t testing.TB, s *Store, data []byte) (digest.Digest, ImportStats) {
	t.Helper()
	d := digest.FromBytes(data)
	st, err := s.ImportLayer(context.Background(), bytes.NewReader(data), d)
	if err != nil {
		t.Fatalf("ImportLayer: %v", err)
	}
	return d, st
}

func mustCompose(t testing.TB, s *Store, dest string, layers ...digest.Digest) {
	t.Helper()
	if err := os.MkdirAll(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Compose(context.Background(), layers, dest); err != nil {
		t.Fatalf("Compose: %v", err)
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lstat(t testing.TB, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

func getxattr(t testing.TB, p, name string) ([]byte, bool) {
	t.Helper()
	buf := make([]byte, 1024)
	n, err := unix.Lgetxattr(p, name, buf)
	if errors.Is(err, unix.ENODATA) {
		return nil, false
	}
	if err != nil {
		t.Fatalf("lgetxattr %s %s: %v", p, name, err)
	}
	return buf[:n], true
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// snapshot records everything observable about a tree: type, mode, owner,
// size, mtime, content hash and link target of every entry.
func snapshot(t testing.TB, root string, skip ...string) map[string]string {
	t.Helper()
	out := make(map[string]string)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		for _, s := range skip {
			if rel == s {
				return filepath.SkipDir
			}
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := []string{fmt.Sprintf("mode=%o uid=%d gid=%d size=%d mtime=%d", st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec)}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc = append(desc, "sha="+hex.EncodeToString(sum[:]))
		case unix.S_IFLNK:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc = append(desc, "link="+l)
		}
		out[rel] = strings.Join(desc, " ")
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return out
}

func diffSnapshots(t testing.TB, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if a, ok := after[k]; !ok {
			t.Errorf("%s: %s disappeared", what, k)
		} else if a != v {
			t.Errorf("%s: %s changed: %s -> %s", what, k, v, a)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: %s appeared", what, k)
		}
	}
}
