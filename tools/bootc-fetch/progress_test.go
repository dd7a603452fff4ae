package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/types"
)

func TestTTYProgress(t *testing.T) {
	p := &plan{layers: []layerPlan{
		{info: types.BlobInfo{Digest: digest.FromString("a"), Size: 100}},
		{info: types.BlobInfo{Digest: digest.FromString("b"), Size: 2048}, fetch: true},
	}, reused: 1, cachedBytes: 100, fetchBytes: 2048, fetchLayers: 1}
	var tty, js bytes.Buffer
	pr := newProgress(sinks{tty: &tty, json: &js}, "example/os:1", p)
	pr.layerStart(1)
	pr.add(1, 1024)
	pr.add(1, 1024)
	pr.layerDone(1)
	pr.finish(nil)
	out := tty.String()
	for _, want := range []string{"Layer 1/1 " + digest.FromString("b").String()[:19], "total ", "/s", "Fetched 2.0 KiB in "} {
		if !strings.Contains(out, want) {
			t.Errorf("tty output lacks %q: %q", want, out)
		}
	}
	evs := checkProgress(t, js.Bytes())
	last := evs[len(evs)-1]
	if last["bytes"] != float64(2148) || last["bytesTotal"] != float64(2148) || last["steps"] != float64(2) || last["stepsCached"] != float64(1) {
		t.Errorf("last event %v", last)
	}
}
