package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/fetchtest"
)

// The preflight refuses before downloading anything when the store's filesystem is too small.
func TestDiskSpacePreflight(t *testing.T) {
	fetchtest.RequireRoot(t)
	e := newEnv(t)
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=2m"); err != nil {
		envtest.Missing(t, "a tmpfs mount: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	img := fetchtest.Bootable("1")
	img.Layers = append(img.Layers, fetchtest.Layer{Files: []fetchtest.File{{Path: "big", Data: fetchtest.RandomBytes(7, 1<<20)}}, Compression: fetchtest.Gzip})
	e.push("os:big", img)
	c, _ := e.cli(e.proxy.Ref("os:big"))
	c.Sysroot, c.RunDir = mnt, filepath.Join(t.TempDir(), "run")
	_, _, err := run(t, c)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("err = %v, want %v", err, ErrNoSpace)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "required 3.0 MiB") || !strings.Contains(msg, "available ") ||
		!strings.Contains(msg, "no space left on device") ||
		!strings.Contains(msg, e.proxy.Ref("os:big")) {
		t.Errorf("message %q", msg)
	}
	if n := e.proxy.BlobGets(); n != 1 { // the config
		t.Errorf("%d blob requests before refusing, want 1", n)
	}
}

// The registry goes away in the middle of a layer: the fetch fails, the store keeps the complete
// layers, and a rerun fetches only what is missing.
func TestRegistryStopsMidBlob(t *testing.T) {
	e := newEnv(t)
	img := fetchtest.Bootable("1")
	img.Layers = append(img.Layers,
		fetchtest.Layer{Files: []fetchtest.File{{Path: "a", Data: fetchtest.RandomBytes(1, 200<<10)}}, Compression: fetchtest.Uncompressed},
		fetchtest.Layer{Files: []fetchtest.File{{Path: "b", Data: fetchtest.RandomBytes(2, 300<<10)}}, Compression: fetchtest.Uncompressed})
	b := e.push("os:1", img)
	// The first blob above 250 KiB is the last layer.
	stalled, release := e.proxy.StallNextBlob(250 << 10)
	go func() {
		<-stalled
		e.reg.Stop()
		release()
	}()
	c, _ := e.cli(e.proxy.Ref("os:1"))
	if _, _, err := run(t, e.root(c)); err == nil {
		t.Fatal("fetch succeeded with the registry gone")
	} else if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), b.LayerDigests[3].String()) {
		t.Errorf("error %q does not name the layer on one line", err)
	}
	st := openStore(t, e)
	for i, d := range b.DiffIDs {
		ok, _ := st.HasLayer(d)
		if ok != (i < 3) {
			t.Errorf("layer %d stored = %v", i, ok)
		}
	}
	e.reg.Start()
	before := e.proxy.Requests()
	if _, stderr, err := run(t, e.root(c)); err != nil {
		t.Fatalf("rerun: %v\n%s", err, stderr)
	}
	again := e.proxy.Requests()[len(before):]
	for _, r := range again {
		for _, d := range b.LayerDigests[:3] {
			if strings.Contains(r, d.String()) {
				t.Errorf("rerun fetched complete layer again: %s", r)
			}
		}
	}
	if !strings.Contains(strings.Join(again, "\n"), b.LayerDigests[3].String()) {
		t.Errorf("rerun did not fetch the missing layer: %v", again)
	}
}

// The process is killed in the middle of a layer; the rerun completes without refetching complete
// layers (counted in bytes at the proxy).
func TestKilledMidFetch(t *testing.T) {
	e := newEnv(t)
	bin := binary(t)
	img := fetchtest.Bootable("1")
	img.Layers = append(img.Layers,
		fetchtest.Layer{Files: []fetchtest.File{{Path: "a", Data: fetchtest.RandomBytes(3, 400<<10)}}},
		fetchtest.Layer{Files: []fetchtest.File{{Path: "b", Data: fetchtest.RandomBytes(4, 600<<10)}}})
	b := e.push("os:1", img)
	stalled, release := e.proxy.StallNextBlob(500 << 10)
	defer release()
	args := []string{"--sysroot", e.sys.Root.Phys, "--run-dir", e.sys.Root.Run, "--registries-conf", e.conf, "--cmdline", "/dev/null", e.proxy.Ref("os:1")}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "BOOTC_SYSROOT=", "BOOTC_RUN_DIR=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stalled:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("fetch never reached the last layer")
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	release()
	first := e.proxy.BlobBytes()

	resPath := filepath.Join(t.TempDir(), "result.json")
	out, err := exec.Command(bin, append(args, "--result", resPath, "--quiet")...).CombinedOutput()
	if err != nil {
		t.Fatalf("rerun: %v\n%s", err, out)
	}
	result, _ := os.ReadFile(resPath)
	refetched := e.proxy.BlobBytes() - first
	want := b.LayerSizes[3] + int64(len(b.Config))
	if refetched != want {
		t.Errorf("rerun downloaded %d bytes, want %d (last layer and config)", refetched, want)
	}
	var res Result
	if err := json.Unmarshal(result, &res); err != nil || res.LayersFetched != 1 || res.LayersReused != 3 {
		t.Errorf("result %+v (%v) from %q", res, err, out)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.sys.Root.Store(), "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ not cleaned: %v", ents)
	}
}

// A real Debian root filesystem survives the fetch: every member of the tarball is in the
// composed tree with its type, mode (setuid included), owner, size, link target and xattrs, and
// hardlinks stay hardlinks.
func TestDebianRootfs(t *testing.T) {
	fetchtest.RequireRoot(t)
	tarball := fetchtest.DebianTarball(t)
	e := newEnv(t)
	bin := binary(t)
	img, err := fetchtest.DebianImage(tarball, "13")
	if err != nil {
		t.Fatal(err)
	}
	b := e.push("debian:13", img)

	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--sysroot", e.sys.Root.Phys, "--registries-conf", e.conf, "--cmdline", "/dev/null",
		"--progress-fd", "3", e.reg.Ref("debian:13"))
	cmd.ExtraFiles = []*os.File{pw}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	events, _ := io.ReadAll(pr)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("fetch: %v\n%s", err, stderr.String())
	}
	t.Logf("fetched %d MiB of layers in %s", (b.LayerSizes[0]+b.LayerSizes[1])>>20, time.Since(start).Round(time.Millisecond))
	evs := checkProgress(t, events)
	if last := evs[len(evs)-1]; last["steps"] != float64(2) || last["bytes"] != last["bytesTotal"] {
		t.Errorf("last event %v", last)
	}

	st := openStore(t, e)
	dest := filepath.Join(e.sys.Root.Bootc(), "compose-test")
	if err := os.Mkdir(dest, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := st.Compose(t.Context(), b.DiffIDs, dest); err != nil {
		t.Fatal(err)
	}
	n := compareTree(t, tarball, dest)
	if n < 1000 {
		t.Errorf("only %d members compared", n)
	}
	// The extra layer's setuid hardlink pair and file capability.
	a, _ := os.Lstat(filepath.Join(dest, "usr/bin/suidtest"))
	l, _ := os.Lstat(filepath.Join(dest, "usr/bin/suidtest-link"))
	if a == nil || l == nil || !os.SameFile(a, l) || a.Mode()&os.ModeSetuid == 0 {
		t.Errorf("setuid hardlink pair: %v %v", a, l)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(dest, fetchtest.CapabilityFile), "security.capability", buf); err != nil || string(buf[:n]) != fetchtest.CapNetRawXattr {
		t.Errorf("capability xattr: %q %v", buf[:max(n, 0)], err)
	}
	if _, err := os.Stat(filepath.Join(dest, "usr/lib/modules", fetchtest.KernelVersion, "vmlinuz")); err != nil {
		t.Error(err)
	}
}

// compareTree checks every tarball member against the composed tree and returns how many it
// compared.
func compareTree(t *testing.T, tarball, root string) int {
	t.Helper()
	f, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	links := map[string]string{}
	n, bad := 0, 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(filepath.Clean("/"+h.Name), "/")
		if name == "" || h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeBlock || h.Typeflag == tar.TypeFifo {
			continue // device nodes are not carried by images
		}
		p := filepath.Join(root, name)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("%s: %v", name, err)
			bad++
			continue
		}
		n++
		problem := ""
		wantPerm := uint32(h.Mode) & 0o7777
		switch h.Typeflag {
		case tar.TypeDir:
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				problem = "not a directory"
			}
		case tar.TypeSymlink:
			target, _ := os.Readlink(p)
			if st.Mode&unix.S_IFMT != unix.S_IFLNK || target != h.Linkname {
				problem = "symlink " + target + " != " + h.Linkname
			}
			wantPerm = st.Mode & 0o7777
		case tar.TypeLink:
			links[name] = strings.TrimPrefix(filepath.Clean("/"+h.Linkname), "/")
		case tar.TypeReg:
			if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != h.Size {
				problem = "regular file size differs"
			}
		}
		if h.Typeflag != tar.TypeLink {
			if st.Mode&0o7777 != wantPerm || int(st.Uid) != h.Uid || int(st.Gid) != h.Gid {
				problem += fmt.Sprintf(" mode/owner %#o %d:%d, want %#o %d:%d", st.Mode&0o7777, st.Uid, st.Gid, wantPerm, h.Uid, h.Gid)
			}
			for k, v := range h.PAXRecords {
				if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
					buf := make([]byte, 4096)
					m, err := unix.Lgetxattr(p, x, buf)
					if err != nil || string(buf[:m]) != v {
						problem += " xattr " + x
					}
				}
			}
		}
		if problem != "" && bad < 20 {
			t.Errorf("%s: %s", name, problem)
			bad++
		}
	}
	for name, target := range links {
		a, err1 := os.Lstat(filepath.Join(root, name))
		b, err2 := os.Lstat(filepath.Join(root, target))
		if err1 != nil || err2 != nil || !os.SameFile(a, b) {
			t.Errorf("hardlink %s -> %s not preserved", name, target)
		}
	}
	return n
}
