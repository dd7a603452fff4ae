package installconfig

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"

	"gobootc.dev/lib/fuzztest"
	"gobootc.dev/lib/layout"
)

// FuzzParse checks that an install drop-in either fails with a one-line error that is
// ErrInvalid or ErrUnknownKey, or gives a configuration whose every value is one Load accepts,
// which written back as a drop-in parses to the same configuration, and which merges onto an
// empty one unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range fuzztest.Literals(f) {
		f.Add([]byte(s))
	}
	for _, file := range fuzztest.Files(f, "images/files/usr/lib/bootc/install/*.toml") {
		f.Add(file.Data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const arch = "x86_64"
		c, matched, err := Parse("00-image.toml", data, arch)
		if err != nil {
			fuzztest.OneLine(t, err)
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrUnknownKey) {
				t.Errorf("error matches no sentinel: %v", err)
			}
			return
		}
		if !matched {
			if want, _ := json.Marshal(&Config{}); string(mustJSON(t, c)) != string(want) {
				t.Errorf("a file for other architectures gave %s", mustJSON(t, c))
			}
			return
		}
		checkValid(t, c, arch)

		again, err := toml.Marshal(dropIn(c))
		if err != nil {
			t.Fatalf("encoding %s: %v", mustJSON(t, c), err)
		}
		back, ok, err := Parse("00-again.toml", again, arch)
		if err != nil || !ok {
			t.Fatalf("configuration %s written as\n%s\ndoes not parse back: %v", mustJSON(t, c), again, err)
		}
		if got, want := mustJSON(t, back), mustJSON(t, c); string(got) != string(want) {
			t.Errorf("configuration changed through a rewrite:\n%s\n%s", want, got)
		}

		merged := &Config{}
		merged.Merge(c)
		if got, want := mustJSON(t, merged), mustJSON(t, c); string(got) != string(want) {
			t.Errorf("merging onto an empty configuration changed it:\n%s\n%s", want, got)
		}
		if p := c.Public(); p.Kargs != nil || p.KargDeletes != nil {
			t.Errorf("Public keeps kernel arguments: %s", mustJSON(t, p))
		}
	})
}

func checkValid(t *testing.T, c *Config, arch string) {
	t.Helper()
	if fs := c.FSType(); fs != "" && !slices.Contains(FilesystemTypes, fs) {
		t.Errorf("filesystem type %q accepted", fs)
	}
	if c.RootFSType != c.FSType() {
		t.Errorf("root-fs-type %q and [filesystem.root] %q disagree", c.RootFSType, c.FSType())
	}
	for _, b := range c.Block {
		if !slices.Contains(BlockSetups, b) {
			t.Errorf("block setup %q accepted", b)
		}
	}
	if c.Stateroot != "" {
		if err := layout.CheckName("stateroot", c.Stateroot); err != nil {
			t.Errorf("stateroot accepted: %v", err)
		}
	}
	if c.Bootloader != "" && !slices.Contains(Bootloaders, c.Bootloader) {
		t.Errorf("bootloader %q accepted", c.Bootloader)
	}
	if c.MatchArchitectures != nil && !slices.Contains(c.MatchArchitectures, arch) {
		t.Errorf("match-architectures %q accepted for %s", c.MatchArchitectures, arch)
	}
}

// dropIn renders c as the [install] table of a drop-in.
func dropIn(c *Config) map[string]any {
	in := map[string]any{}
	if c.RootFSType != "" {
		in["root-fs-type"] = c.RootFSType
	}
	for key, list := range map[string][]string{
		"kargs": c.Kargs, "karg-deletes": c.KargDeletes, "block": c.Block, "match-architectures": c.MatchArchitectures,
	} {
		if list != nil {
			in[key] = list
		}
	}
	if c.Stateroot != "" {
		in["stateroot"] = c.Stateroot
	}
	if c.RootMountSpec != nil {
		in["root-mount-spec"] = *c.RootMountSpec
	}
	if c.BootMountSpec != nil {
		in["boot-mount-spec"] = *c.BootMountSpec
	}
	if c.Bootloader != "" {
		in["bootloader"] = c.Bootloader
	}
	return map[string]any{"install": in}
}

func mustJSON(t *testing.T, c *Config) []byte {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
