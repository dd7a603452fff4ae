package store

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
)

// syntheticLayer has n files of 1-8 KiB of random bytes in 50 directories;
// every tenth file repeats an earlier one, as licences and empty files do.
func syntheticLayer(b testing.TB, n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var ents []tent
	var bodies []string
	for i := range 50 {
		ents = append(ents, dir("usr/share/d"+strconv.Itoa(i)+"/"))
	}
	for i := range n {
		var body string
		if i%10 == 9 {
			body = bodies[rng.IntN(len(bodies))]
		} else {
			buf := make([]byte, 1024+rng.IntN(7*1024))
			for j := range buf {
				buf[j] = byte(rng.Uint32())
			}
			body = string(buf)
			bodies = append(bodies, body)
		}
		ents = append(ents, file("usr/share/d"+strconv.Itoa(i%50)+"/f"+strconv.Itoa(i), body))
	}
	return layerTar(b, ents...)
}

func BenchmarkImportLayer(b *testing.B) {
	data := syntheticLayer(b, 3000)
	d := digest.FromBytes(data)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		b.StopTimer()
		s := openStore(b, filepath.Join(b.TempDir(), "store"))
		b.StartTimer()
		if _, err := s.ImportLayer(context.Background(), bytes.NewReader(data), d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompose(b *testing.B) {
	data := syntheticLayer(b, 3000)
	root := b.TempDir()
	s := openStore(b, filepath.Join(root, "store"))
	d, _ := mustImport(b, s, data)
	i := 0
	for b.Loop() {
		i++
		if err := s.Compose(context.Background(), []digest.Digest{d}, mkdest(b, root, i)); err != nil {
			b.Fatal(err)
		}
	}
}

func mkdest(b *testing.B, root string, i int) string {
	b.StopTimer()
	defer b.StartTimer()
	p := filepath.Join(root, "dest"+strconv.Itoa(i))
	if err := os.Mkdir(p, 0o755); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkImportSharedLayer imports a layer whose files are all stored
// already, as when an updated image rebuilds a layer without changing it.
func BenchmarkImportSharedLayer(b *testing.B) {
	data := syntheticLayer(b, 3000)
	s := openStore(b, filepath.Join(b.TempDir(), "store"))
	mustImport(b, s, data)
	b.SetBytes(int64(len(data)))
	i := 0
	for b.Loop() {
		i++
		// A fresh diff ID each round: trailing padding is part of the stream.
		layer := append(bytes.Clone(data), make([]byte, 512*i)...)
		if _, err := s.ImportLayer(context.Background(), bytes.NewReader(layer), digest.FromBytes(layer)); err != nil {
			b.Fatal(err)
		}
	}
}
