package bootloader

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gobootc.dev/lib/bls"
	"gobootc.dev/lib/layout"
)

var modes = []struct {
	name string
	opts Options
}{
	{"symlink", Options{Mode: ModeSymlink, NoFreeze: true}},
	{"symlink-separate", Options{Mode: ModeSymlink, NoFreeze: true, BootSeparate: true, FSUUID: "0b7c1e2a-3d4f-4a5b-8c6d-7e8f9a0b1c2d"}},
	{"fat", Options{Mode: ModeFAT, NoFreeze: true}},
}

func TestRoundTrip(t *testing.T) {
	special := dep("c.1", "ccc")
	special.Kargs = `root=UUID=1234 foo="a b" quiet -- single`
	special.Stateroot = "other"
	sets := [][]Deployment{
		{dep("a.0", "aaa")},
		{dep("b.0", "bbb"), dep("a.0", "aaa")},
		{special, dep("b.0", "bbb"), dep("a.0", "aaa")},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			boot := newBoot(t)
			for _, set := range sets {
				mustWrite(t, boot, set, m.opts)
				if got := mustRead(t, boot); !reflect.DeepEqual(got, set) {
					t.Fatalf("ReadSet after WriteSet:\n got %+v\nwant %+v", got, set)
				}
			}
		})
	}
}

func TestDefaultTitle(t *testing.T) {
	boot := newBoot(t)
	d := dep("a.0", "aaa")
	d.Title = ""
	mustWrite(t, boot, []Deployment{d}, Options{NoFreeze: true})
	if got := mustRead(t, boot)[0].Title; got != "default/a.0" {
		t.Errorf("title = %q, want default/a.0", got)
	}
}

// TestEntries checks the entry files themselves: each parses on its own, their BLS order is the
// set order whatever order they are listed in, paths carry /boot only when /boot is on the root
// filesystem, and the command line ends with the deployment argument.
func TestEntries(t *testing.T) {
	set := []Deployment{dep("c.0", "ccc"), dep("a.0", "aaa"), dep("b.0", "bbb"), dep("d.0", "aaa"),
		dep("e.0", "bbb"), dep("f.0", "ccc"), dep("g.0", "aaa"), dep("h.0", "bbb"), dep("i.0", "ccc"),
		dep("j.0", "aaa"), dep("k.0", "bbb")} // more than 9, so bootc-10 vs bootc-9 is exercised
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			boot := newBoot(t)
			// Write twice in FAT mode so that the generation moves on from a previous set.
			rev := slices.Clone(set)
			slices.Reverse(rev)
			mustWrite(t, boot, rev, m.opts)
			mustWrite(t, boot, set, m.opts)
			dir := filepath.Join(boot, "loader", "entries")
			des, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var entries []bls.Entry
			for _, de := range des {
				data, err := os.ReadFile(filepath.Join(dir, de.Name()))
				if err != nil {
					t.Fatal(err)
				}
				e, err := bls.Parse(de.Name(), data)
				if err != nil {
					t.Fatalf("entry does not parse: %v", err)
				}
				entries = append(entries, e)
			}
			if len(entries) != len(set) {
				t.Fatalf("%d entry files, want %d", len(entries), len(set))
			}
			slices.Reverse(entries)
			bls.Sort(entries)
			separate := m.opts.BootSeparate || m.opts.Mode == ModeFAT
			for i, e := range entries {
				d := set[i]
				want := layout.DeploymentKarg + "=" + d.Stateroot + "/" + d.ID
				if !strings.HasSuffix(e.Cmdline(), " "+want) {
					t.Errorf("entry %d (%s): options %q do not end with %s", i, e.Name, e.Cmdline(), want)
				}
				kernel := d.Kernel
				if !separate {
					kernel = "/boot" + kernel
				}
				if e.Linux != kernel {
					t.Errorf("entry %d (%s): linux %q, want %q", i, e.Name, e.Linux, kernel)
				}
				if e.SortKey != "bootc" || e.Title != d.Title {
					t.Errorf("entry %d (%s): sort-key %q title %q", i, e.Name, e.SortKey, e.Title)
				}
			}
		})
	}
}

func TestGrubMenu(t *testing.T) {
	apostrophe := dep("b.0", "bbb")
	apostrophe.Title = `Admin's $HOME {test} "OS"`
	apostrophe.Kargs = `root=UUID=1234 rd.x="two words" $notavar`
	set := []Deployment{apostrophe, dep("a.0", "aaa")}
	for _, tc := range []struct {
		name       string
		opts       Options
		prefix     string
		timeout    string
		wantSearch []string
	}{
		{"root-fs", Options{}, "/boot", "5", []string{"--no-floppy", "--file", "--set=root", "/boot/loader/grub.cfg"}},
		{"separate", Options{BootSeparate: true, FSUUID: "ABCD-1234", Timeout: 10}, "", "10",
			[]string{"--no-floppy", "--fs-uuid", "--set=root", "ABCD-1234"}},
		{"no-wait", Options{Timeout: -1}, "/boot", "0", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot := newBoot(t)
			tc.opts.Mode, tc.opts.NoFreeze = ModeSymlink, true
			mustWrite(t, boot, set, tc.opts)
			path := filepath.Join(boot, "loader", "grub.cfg")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			scriptCheck(t, path)
			m := parseMenu(t, string(data))
			if m.defaultEntry != "0" || m.timeout != tc.timeout {
				t.Errorf("default %q timeout %q, want 0 and %s", m.defaultEntry, m.timeout, tc.timeout)
			}
			if tc.wantSearch != nil && !slices.Equal(m.search, tc.wantSearch) {
				t.Errorf("search %q, want %q", m.search, tc.wantSearch)
			}
			if len(m.entries) != len(set) {
				t.Fatalf("%d menu entries, want %d:\n%s", len(m.entries), len(set), data)
			}
			for i, e := range m.entries {
				d := set[i]
				if e.title != d.Title || e.id != "bootc-default-"+d.ID {
					t.Errorf("menu entry %d: title %q id %q", i, e.title, e.id)
				}
				if e.linux[0] != tc.prefix+d.Kernel || e.initrd != tc.prefix+d.Initrd {
					t.Errorf("menu entry %d: linux %q initrd %q", i, e.linux[0], e.initrd)
				}
				if last := e.linux[len(e.linux)-1]; last != "bootc.deployment=default/"+d.ID {
					t.Errorf("menu entry %d: last kernel argument %q", i, last)
				}
			}
			// GRUB quotes a word with a space itself; the value must reach it unquoted.
			if !slices.Contains(m.entries[0].linux, "rd.x=two words") || !slices.Contains(m.entries[0].linux, "$notavar") {
				t.Errorf("menu entry 0 arguments %q", m.entries[0].linux)
			}
		})
	}
}

func TestWriteGrubConfig(t *testing.T) {
	for _, tc := range []struct {
		name       string
		opts       Options
		configfile string
		search     string
	}{
		{"root-fs", Options{}, "configfile /boot/loader/grub.cfg", "search --no-floppy --file --set=root /boot/loader/grub.cfg"},
		{"separate", Options{BootSeparate: true, FSUUID: "0b7c1e2a-3d4f"}, "configfile /loader/grub.cfg", "search --no-floppy --fs-uuid --set=root 0b7c1e2a-3d4f"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot := newBoot(t)
			if err := WriteGrubConfig(boot, tc.opts); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(boot, "grub", "grub.cfg")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			scriptCheck(t, path)
			var lines []string
			for _, l := range strings.Split(string(data), "\n") {
				lines = append(lines, strings.TrimSpace(l))
			}
			if !slices.Contains(lines, tc.configfile) || !slices.Contains(lines, tc.search) {
				t.Errorf("grub.cfg lacks %q or %q:\n%s", tc.configfile, tc.search, data)
			}
			// The file GRUB is told to load is the one WriteSet maintains.
			mustWrite(t, boot, []Deployment{dep("a.0", "aaa")}, Options{Mode: ModeSymlink, NoFreeze: true, BootSeparate: tc.opts.BootSeparate})
			target := strings.TrimPrefix(strings.TrimPrefix(tc.configfile, "configfile "), "/boot")
			if _, err := os.Stat(filepath.Join(boot, target)); err != nil {
				t.Errorf("menu GRUB loads: %v", err)
			}
		})
	}
	if err := WriteGrubConfig(newBoot(t), Options{FSUUID: "x; reboot"}); !errors.Is(err, ErrInvalidSet) {
		t.Errorf("bad UUID: err = %v, want ErrInvalidSet", err)
	}
}

// TestNoLeftovers writes several sets in a row and checks that only the live generation
// remains, without temporaries.
func TestNoLeftovers(t *testing.T) {
	sets := [][]Deployment{
		{dep("a.0", "aaa")},
		{dep("b.0", "bbb"), dep("a.0", "aaa")},
		{dep("a.0", "aaa"), dep("b.0", "bbb")},
		{dep("c.0", "ccc"), dep("a.0", "aaa")},
		{dep("c.0", "ccc")},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			boot := newBoot(t)
			for i, set := range sets {
				mustWrite(t, boot, set, m.opts)
				var want []string
				if m.opts.Mode == ModeFAT {
					want = []string{"loader", "loader/entries", "loader/grub.cfg"}
					for _, d := range set {
						want = append(want, "loader/entries/"+fatID(d.Stateroot, d.ID)+".conf")
					}
				} else {
					gen := "loader." + fmt.Sprint(i%2)
					want = []string{"loader", gen, gen + "/entries", gen + "/grub.cfg"}
					for n := range len(set) {
						want = append(want, fmt.Sprintf("%s/entries/bootc-%d.conf", gen, n+1))
					}
				}
				var got []string
				for _, p := range listTree(t, boot) {
					if p != "." && p != "bootc" && !strings.HasPrefix(p, "bootc/") {
						got = append(got, p)
					}
				}
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("after set %d: /boot holds\n%q\nwant\n%q", i, got, want)
				}
			}
		})
	}
}

func TestForeignEntriesOnFAT(t *testing.T) {
	boot := newBoot(t)
	dir := filepath.Join(boot, "loader", "entries")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	foreign := "title Other OS\nsort-key zzz\nlinux /other/vmlinuz\n"
	if err := os.WriteFile(filepath.Join(dir, "other.conf"), []byte(foreign), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := Options{Mode: ModeFAT, NoFreeze: true}
	mustWrite(t, boot, []Deployment{dep("a.0", "aaa"), dep("b.0", "bbb")}, opts)
	mustWrite(t, boot, []Deployment{dep("b.0", "bbb")}, opts)
	if got := ids(mustRead(t, boot)); !slices.Equal(got, []string{"default/b.0"}) {
		t.Errorf("ReadSet = %q, want only bootc's entry", got)
	}
	if data, err := os.ReadFile(filepath.Join(dir, "other.conf")); err != nil || string(data) != foreign {
		t.Errorf("foreign entry changed: %q, %v", data, err)
	}
}

func TestReadSetEmpty(t *testing.T) {
	set, err := ReadSet(newBoot(t))
	if err != nil || len(set) != 0 {
		t.Errorf("ReadSet of a fresh /boot = %v, %v; want empty", set, err)
	}
}

func TestDetectMode(t *testing.T) {
	// The test directory is not FAT (vfat cannot be mounted on the test host).
	if m, err := DetectMode(t.TempDir()); err != nil || m != ModeSymlink {
		t.Errorf("DetectMode = %v, %v; want symlink", m, err)
	}
	if _, err := DetectMode(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("DetectMode of a missing directory succeeded")
	}
}

func TestBadInput(t *testing.T) {
	mod := func(f func(*Deployment)) []Deployment {
		d := dep("x.0", "aaa")
		f(&d)
		return []Deployment{d, dep("a.0", "aaa")}
	}
	cases := []struct {
		name string
		set  []Deployment
		opts Options
		want error
	}{
		{"empty", nil, Options{}, ErrInvalidSet},
		{"duplicate", []Deployment{dep("a.0", "aaa"), dep("a.0", "bbb")}, Options{}, ErrInvalidSet},
		{"bad stateroot", mod(func(d *Deployment) { d.Stateroot = "../x" }), Options{}, layout.ErrInvalidName},
		{"bad id", mod(func(d *Deployment) { d.ID = "" }), Options{}, layout.ErrInvalidName},
		{"missing kernel", mod(func(d *Deployment) { d.Kernel = "/bootc/sha256-zzz/vmlinuz" }), Options{}, os.ErrNotExist},
		{"missing initrd", mod(func(d *Deployment) { d.Initrd = "/bootc/sha256-zzz/initramfs.img" }), Options{}, os.ErrNotExist},
		{"kernel is a directory", mod(func(d *Deployment) { d.Kernel = "/bootc/sha256-aaa" }), Options{}, ErrInvalidSet},
		{"relative kernel", mod(func(d *Deployment) { d.Kernel = "bootc/sha256-aaa/vmlinuz" }), Options{}, ErrInvalidSet},
		{"unclean kernel", mod(func(d *Deployment) { d.Kernel = "/bootc/../bootc/sha256-aaa/vmlinuz" }), Options{}, ErrInvalidSet},
		{"/boot prefix", mod(func(d *Deployment) { d.Kernel = "/boot/bootc/sha256-aaa/vmlinuz" }), Options{}, ErrInvalidSet},
		{"space in path", mod(func(d *Deployment) { d.Initrd = "/bootc/sha256-aaa/init ramfs" }), Options{}, ErrInvalidSet},
		{"title newline", mod(func(d *Deployment) { d.Title = "a\nb" }), Options{}, ErrInvalidSet},
		{"kargs name deployment", mod(func(d *Deployment) { d.Kargs = "rw bootc.deployment=default/a.0" }), Options{}, ErrInvalidSet},
		{"kargs unterminated", mod(func(d *Deployment) { d.Kargs = `rw foo="bar` }), Options{}, ErrInvalidSet},
		{"kargs backslash for grub", mod(func(d *Deployment) { d.Kargs = `rw foo=a\b` }), Options{Mode: ModeSymlink}, ErrInvalidSet},
		{"bad uuid", []Deployment{dep("a.0", "aaa")}, Options{FSUUID: "x y"}, ErrInvalidSet},
		{"fat name clash", []Deployment{
			{Stateroot: "a-b", ID: "c", Kernel: "/bootc/sha256-aaa/vmlinuz"},
			{Stateroot: "a", ID: "b-c", Kernel: "/bootc/sha256-aaa/vmlinuz"},
		}, Options{Mode: ModeFAT}, ErrInvalidSet},
		{"fat name case clash", []Deployment{
			{Stateroot: "A", ID: "c", Kernel: "/bootc/sha256-aaa/vmlinuz"},
			{Stateroot: "a", ID: "c", Kernel: "/bootc/sha256-aaa/vmlinuz"},
		}, Options{Mode: ModeFAT}, ErrInvalidSet},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, mode := range []Mode{ModeSymlink, ModeFAT} {
				if tc.opts.Mode != ModeAuto && tc.opts.Mode != mode {
					continue
				}
				boot := newBoot(t)
				old := []Deployment{dep("a.0", "aaa")}
				opts := tc.opts
				opts.Mode, opts.NoFreeze = mode, true
				mustWrite(t, boot, old, Options{Mode: mode, NoFreeze: true})
				before := listTree(t, boot)
				err := WriteSet(boot, tc.set, opts)
				if !errors.Is(err, tc.want) {
					t.Fatalf("%v mode: err = %v, want %v", mode, err, tc.want)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				if after := listTree(t, boot); !slices.Equal(before, after) {
					t.Errorf("%v mode: a refused set changed /boot:\n%q\n%q", mode, before, after)
				}
			}
		})
	}
}

func TestUnknownLayout(t *testing.T) {
	set := []Deployment{dep("a.0", "aaa")}
	t.Run("foreign symlink", func(t *testing.T) {
		boot := newBoot(t)
		if err := os.Symlink("elsewhere", filepath.Join(boot, "loader")); err != nil {
			t.Fatal(err)
		}
		if err := WriteSet(boot, set, Options{Mode: ModeSymlink, NoFreeze: true}); !errors.Is(err, ErrUnknownLayout) {
			t.Errorf("err = %v, want ErrUnknownLayout", err)
		}
	})
	t.Run("regular file", func(t *testing.T) {
		boot := newBoot(t)
		if err := os.WriteFile(filepath.Join(boot, "loader"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := WriteSet(boot, set, Options{Mode: ModeSymlink, NoFreeze: true}); !errors.Is(err, ErrUnknownLayout) {
			t.Errorf("err = %v, want ErrUnknownLayout", err)
		}
	})
	t.Run("fat on a symlink layout", func(t *testing.T) {
		boot := newBoot(t)
		mustWrite(t, boot, set, Options{Mode: ModeSymlink, NoFreeze: true})
		if err := WriteSet(boot, set, Options{Mode: ModeFAT, NoFreeze: true}); !errors.Is(err, ErrUnknownLayout) {
			t.Errorf("err = %v, want ErrUnknownLayout", err)
		}
	})
}

func TestReadSetBroken(t *testing.T) {
	t.Run("dangling symlink", func(t *testing.T) {
		boot := newBoot(t)
		if err := os.Symlink(gen1, filepath.Join(boot, "loader")); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSet(boot); !errors.Is(err, ErrUnknownLayout) {
			t.Errorf("err = %v, want ErrUnknownLayout", err)
		}
	})
	t.Run("torn entry", func(t *testing.T) {
		boot := newBoot(t)
		mustWrite(t, boot, []Deployment{dep("a.0", "aaa")}, Options{Mode: ModeFAT})
		path := filepath.Join(boot, "loader", "entries", fatID("default", "a.0")+".conf")
		if err := os.WriteFile(path, []byte("title half"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSet(boot); !errors.Is(err, bls.ErrNoKernel) {
			t.Errorf("err = %v, want bls.ErrNoKernel", err)
		}
		// WriteSet repairs it.
		mustWrite(t, boot, []Deployment{dep("a.0", "aaa")}, Options{Mode: ModeFAT})
		if got := ids(mustRead(t, boot)); !slices.Equal(got, []string{"default/a.0"}) {
			t.Errorf("after repair: %q", got)
		}
	})
	t.Run("deployment argument twice", func(t *testing.T) {
		boot := newBoot(t)
		dir := filepath.Join(boot, "loader", "entries")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := "linux /k\noptions bootc.deployment=default/a bootc.deployment=default/b\n"
		if err := os.WriteFile(filepath.Join(dir, "x.conf"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadSet(boot); err == nil || !strings.Contains(err.Error(), "2 times") {
			t.Errorf("err = %v, want a complaint about the repeated argument", err)
		}
	})
}

// TestCheckpointStep checks where the freeze/thaw checkpoint happens without doing it (freezing
// the test host's filesystem is not something a unit test may do): after the switch is durable
// and before the previous generation is removed.
func TestCheckpointStep(t *testing.T) {
	boot := newBoot(t)
	old := []Deployment{dep("a.0", "aaa")}
	mustWrite(t, boot, old, Options{Mode: ModeSymlink, NoFreeze: true})
	var steps []string
	opts := Options{Mode: ModeSymlink, Failpoint: func(step string) error {
		steps = append(steps, step)
		if step == "checkpoint" {
			return errCrash
		}
		return nil
	}}
	newSet := []Deployment{dep("b.0", "bbb"), dep("a.0", "aaa")}
	if err := WriteSet(boot, newSet, opts); !errors.Is(err, errCrash) {
		t.Fatalf("err = %v, want the failpoint's error before the checkpoint", err)
	}
	if n := len(steps); n < 2 || steps[n-2] != "sync-switch" {
		t.Errorf("steps %q: checkpoint does not follow sync-switch", steps)
	}
	if got := mustRead(t, boot); !reflect.DeepEqual(got, newSet) {
		t.Errorf("at the checkpoint the set is %q, want the new one", ids(got))
	}
	if _, err := os.Stat(filepath.Join(boot, gen0)); err != nil {
		t.Errorf("previous generation already gone before the checkpoint: %v", err)
	}
}

// TestFATGrubMenu: a generic image boots GRUB from the ESP too; its menu follows the set.
func TestFATGrubMenu(t *testing.T) {
	boot := newBoot(t)
	for _, set := range [][]Deployment{
		{dep("b.0", "bbb"), dep("a.0", "aaa")},
		{dep("a.0", "aaa"), dep("b.0", "bbb")},
	} {
		mustWrite(t, boot, set, Options{Mode: ModeFAT, NoFreeze: true, FSUUID: "ABCD-1234"})
		data, err := os.ReadFile(filepath.Join(boot, "loader", "grub.cfg"))
		if err != nil {
			t.Fatal(err)
		}
		menu := string(data)
		first, second := strings.Index(menu, "bootc-default-"+set[0].ID), strings.Index(menu, "bootc-default-"+set[1].ID)
		if first < 0 || second < 0 || first > second {
			t.Errorf("menu order does not follow the set %s, %s:\n%s", set[0].ID, set[1].ID, menu)
		}
		if !strings.Contains(menu, "linux "+set[0].Kernel) || strings.Contains(menu, "/boot/bootc") {
			t.Errorf("menu paths are not relative to the ESP:\n%s", menu)
		}
	}
}
