package main

import (
	"path/filepath"
	"testing"
	"time"

	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/sysroottest"
)

// Every transport but the registry, from local copies of one image.
func TestTransports(t *testing.T) {
	fetchtest.Require(t, "skopeo")
	dir := t.TempDir()
	oci := filepath.Join(dir, "oci")
	b, err := fetchtest.WriteLayout(oci, "os", fetchtest.Bootable("1"))
	if err != nil {
		t.Fatal(err)
	}
	storage := "[vfs@" + filepath.Join(dir, "storage") + "+" + filepath.Join(dir, "runroot") + "]localhost/os:1"
	for _, tc := range []struct{ transport, image, copyTo string }{
		{"oci", oci + ":os", ""},
		{"dir", filepath.Join(dir, "dir"), "dir:" + filepath.Join(dir, "dir")},
		{"oci-archive", filepath.Join(dir, "os.tar") + ":os", "oci-archive:" + filepath.Join(dir, "os.tar") + ":os"},
		{"containers-storage", storage, "containers-storage:" + storage},
	} {
		t.Run(tc.transport, func(t *testing.T) {
			if tc.copyTo != "" {
				if err := fetchtest.Copy("oci:"+oci+":os", tc.copyTo); err != nil {
					t.Fatal(err)
				}
			}
			sys := sysroottest.New(t).Root
			c := &CLI{Image: tc.image, Transport: tc.transport, Cmdline: "/dev/null", LockWait: time.Second, AuthSearch: []string{}}
			c.Sysroot, c.RunDir = sys.Phys, sys.Run
			if _, stderr, err := run(t, c); err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			st := openStoreAt(t, sys.Store())
			for _, d := range b.DiffIDs {
				if ok, _ := st.HasLayer(d); !ok {
					t.Errorf("layer %s missing", d)
				}
			}
		})
	}
}
