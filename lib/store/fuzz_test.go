package store

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// FuzzImportCompose feeds two arbitrary byte strings as consecutive layers and
// composes whatever imported. Errors are fine; a panic, a multi-line error, a
// leftover temp file or any change outside the store and destination is not.
func FuzzImportCompose(f *testing.F) {
	empty := layerTar(f)
	for _, c := range hostileCases() {
		var seeds [][]byte
		for _, l := range c.layers {
			seeds = append(seeds, layerTar(f, l...))
		}
		if len(seeds) == 1 {
			seeds = append(seeds, empty)
		}
		f.Add(seeds[0], seeds[1])
	}
	f.Add(layerTar(f,
		dir("usr/"), tent{name: "usr/bin/su", mode: 0o4755, body: "su"},
		tent{name: "usr/bin/ping", body: "p", xattrs: map[string]string{"security.capability": string(capNetRawEP)}},
		symlink("bin", "usr/bin"), hardlink("usr/bin/su2", "usr/bin/su"), file("etc/.wh..wh..opq", "")),
		layerTar(f, file(".wh.bin", ""), dir("bin/"), file("bin/x", "x"), tent{name: "dev/null", typ: tar.TypeChar}))
	f.Add(paxSparseTar(f), empty)
	f.Add([]byte("not a tar at all"), []byte{})

	f.Fuzz(func(t *testing.T, a, b []byte) {
		root, storeDir, dest, _ := newSandbox(t)
		s, err := Open(storeDir)
		if err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, root, "store", "dest")
		etc := hostEtc(t)
		ctx := context.Background()

		oneLine := func(err error) {
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("multi-line error: %q", err.Error())
			}
		}
		var ds []digest.Digest
		for _, data := range [][]byte{a, b} {
			d := digest.FromBytes(data)
			_, err := s.ImportLayer(ctx, bytes.NewReader(data), d)
			oneLine(err)
			if err != nil {
				break
			}
			ds = append(ds, d)
		}
		oneLine(s.Compose(ctx, ds, dest))

		if ents, _ := os.ReadDir(filepath.Join(storeDir, "tmp")); len(ents) != 0 {
			t.Errorf("tmp not cleaned: %v", ents)
		}
		diffSnapshots(t, "outside store and dest", before, snapshot(t, root, "store", "dest"))
		if got := hostEtc(t); got != etc {
			t.Errorf("host /etc changed")
		}
	})
}
