package bootcount

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gobootc.dev/lib/fuzztest"
	"gobootc.dev/lib/greenboot"
)

// FuzzParseName checks that any file name reads as one entry: a counted name has an ID that is
// its prefix and numbers in range, the canonical File of a parsed name reads back the same, a
// name without a counter is its own file name, and the renames systemd-boot and
// systemd-bless-boot make keep the ID.
func FuzzParseName(f *testing.F) {
	for _, s := range fuzztest.Literals(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		n := ParseName(file)
		if !strings.HasSuffix(file, Suffix) {
			if n != (Name{ID: file}) {
				t.Fatalf("%q has no %s suffix but parsed as %+v", file, Suffix, n)
			}
			return
		}
		if back := ParseName(n.File()); back != n {
			t.Errorf("%q: %+v writes as %q, which reads as %+v", file, n, n.File(), back)
		}
		if !n.Counted {
			if n.File() != file || n.Left != 0 || n.Done != 0 {
				t.Errorf("%q without a counter parsed as %+v", file, n)
			}
		} else {
			if !strings.HasPrefix(file, n.ID+"+") || n.Left < 0 || n.Left > MaxCounter || n.Done < 0 || n.Done > MaxCounter {
				t.Errorf("%q parsed as %+v", file, n)
			}
		}
		next := ParseName(n.Next().File())
		switch {
		case next.ID != n.ID || next.Counted != n.Counted:
			t.Errorf("%q: Next changed the entry: %+v", file, next)
		case n.State() == Bad && next.State() != Bad:
			t.Errorf("%q: a bad entry became %v", file, next.State())
		case n.State() == Trial && next.Left != n.Left-1:
			t.Errorf("%q: Next left %d tries after %d", file, next.Left, n.Left)
		}
		if b := ParseName(n.Bless().File()); b.Counted && n.Counted {
			// Only an ID that itself ends like a counter reads back counted; bootc makes none.
			if !strings.Contains(n.ID, "+") {
				t.Errorf("%q: blessed name %q still counted", file, n.Bless().File())
			}
		}
	})
}

// FuzzParseEnv checks that any 1024 bytes either fail with a one-line ErrEnvInvalid, or give a
// block that marshals to 1024 bytes reading back the same, stably, and on which greenboot's
// variables can be set or are refused as not fitting.
func FuzzParseEnv(f *testing.F) {
	for _, s := range fuzztest.Literals(f) {
		if len(envHeader)+len(s) <= EnvSize {
			f.Add(block(s))
		}
		f.Add([]byte(s))
	}
	for _, b := range grubEditenvSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnv("grubenv", data)
		if err != nil {
			fuzztest.OneLine(t, err)
			if !errors.Is(err, ErrEnvInvalid) {
				t.Errorf("error is not ErrEnvInvalid: %v", err)
			}
			return
		}
		out, err := e.Marshal()
		if err != nil {
			t.Fatalf("a parsed block does not marshal: %v\n%q", err, data)
		}
		if len(out) != EnvSize {
			t.Fatalf("marshalled %d bytes", len(out))
		}
		back, err := ParseEnv("grubenv", out)
		if err != nil {
			t.Fatalf("marshalled block does not parse: %v\n%q", err, out)
		}
		if !reflect.DeepEqual(back, e) {
			t.Errorf("block changed through Marshal:\n%q\n%q", data, out)
		}
		if again, _ := back.Marshal(); string(again) != string(out) {
			t.Errorf("Marshal is not stable:\n%q\n%q", out, again)
		}
		if err := e.SetBootCounter(2); err != nil {
			if !errors.Is(err, ErrEnvFull) {
				t.Errorf("SetBootCounter: %v", err)
			}
			return
		}
		if n, ok, err := e.BootCounter(); n != 2 || !ok || err != nil {
			t.Errorf("after SetBootCounter(2): %d %v %v", n, ok, err)
		}
	})
}

// grubEditenvSeeds are blocks GRUB's own tool writes, when it is installed.
func grubEditenvSeeds(f *testing.F) [][]byte {
	if _, err := exec.LookPath("grub-editenv"); err != nil {
		return nil
	}
	path := filepath.Join(f.TempDir(), "grubenv")
	var out [][]byte
	for _, args := range [][]string{
		{"create"},
		{"set", "boot_counter=3", "boot_success=0"},
		{"set", "saved_entry=bootc-2", `x=a\b`},
		{"unset", "boot_counter"},
	} {
		if err := exec.Command("grub-editenv", append([]string{path}, args...)...).Run(); err != nil {
			f.Fatalf("grub-editenv %v: %v", args, err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

// FuzzParseGreenboot checks that any greenboot.conf either fails with a one-line
// ErrInvalidConfig naming the file, or gives no tries or tries in range from the key
// greenboot's rules pick.
func FuzzParseGreenboot(f *testing.F) {
	for _, s := range fuzztest.Literals(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		tries, err := ParseGreenboot("greenboot.conf", []byte(src))
		if err != nil {
			fuzztest.OneLine(t, err)
			if !errors.Is(err, ErrInvalidConfig) || !strings.HasPrefix(err.Error(), "greenboot.conf: ") {
				t.Errorf("error does not name the file: %v", err)
			}
			return
		}
		if tries == nil {
			return
		}
		want := KeyGreenbootBoots
		if v, ok := greenboot.Parse([]byte(src)).Get(KeyGreenbootAttempts); ok && v != "" {
			want = KeyGreenbootAttempts
		}
		if tries.N < 1 || tries.N > MaxTries || tries.Key != want || tries.Source != "greenboot.conf" {
			t.Errorf("tries = %+v (want key %s)", tries, want)
		}
	})
}
