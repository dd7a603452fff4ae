package fetchtest

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// CacheDir is where expensive fixtures are kept between runs: $BOOTC_TEST_CACHE, or
// /var/cache/bootc-test.
func CacheDir() string {
	if d := os.Getenv("BOOTC_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/bootc-test"
}

// DebianSuite is the release the real root filesystem fixture is built from.
const DebianSuite = "trixie"

// DebianTarball returns the path of a real Debian minbase root filesystem as an uncompressed tar
// stream, building it with mmdebstrap on first use (about a minute, needs root and the Debian
// mirror) and reusing the cached file afterwards.
func DebianTarball(t testing.TB) string {
	t.Helper()
	dir := CacheDir()
	out := filepath.Join(dir, DebianSuite+"-minbase.tar")
	if _, err := os.Stat(out); err == nil {
		return out
	}
	RequireRoot(t)
	Require(t, "mmdebstrap")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := out + ".tmp"
	// --format=tar: the output name alone does not say "tarball" because of the .tmp suffix.
	cmd := exec.Command("mmdebstrap", "--variant=minbase", "--format=tar", DebianSuite, tmp)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		t.Fatalf("mmdebstrap %s: %v\n%s", DebianSuite, err, lastLines(string(b), 20))
	}
	if err := os.Rename(tmp, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// CapabilityFile is a file with a security.capability xattr (cap_net_raw+ep, VFS revision 2)
// that DebianImage adds, because a minbase system ships no file capabilities of its own.
const CapabilityFile = "usr/bin/captest"

// CapNetRawXattr is the raw security.capability value of CapabilityFile.
const CapNetRawXattr = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// DebianImage turns the tarball into a bootable image: the root filesystem as one gzip layer,
// then a layer with the kernel pair, a setuid hardlinked pair and a file with capabilities.
func DebianImage(tarball, version string) (Image, error) {
	raw, err := os.ReadFile(tarball)
	if err != nil {
		return Image{}, fmt.Errorf("reading %s: %w", tarball, err)
	}
	extra := append(KernelFiles(KernelVersion),
		File{Path: "usr/bin", Mode: fs.ModeDir | 0o755},
		File{Path: CapabilityFile, Mode: 0o755, Data: []byte("#!/bin/sh\n"), Xattrs: map[string]string{"security.capability": CapNetRawXattr}},
		File{Path: "usr/bin/suidtest", Mode: fs.ModeSetuid | 0o4755, Data: []byte("suid\n")},
		File{Path: "usr/bin/suidtest-link", Hardlink: "usr/bin/suidtest"},
	)
	return Image{
		Layers: []Layer{{Tar: raw, Compression: Gzip}, {Files: extra, Compression: Zstd}},
		Labels: map[string]string{"containers.bootc": "1", "org.opencontainers.image.version": version},
	}, nil
}
