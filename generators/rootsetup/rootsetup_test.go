package rootsetup

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

func TestDeploymentFromCmdline(t *testing.T) {
	tests := []struct {
		cmdline   string
		stateroot string
		id        string
		err       error
		errText   string
	}{
		{cmdline: "root=/dev/vda rw bootc.deployment=default/0123456789ab.0 console=ttyS0\n", stateroot: "default", id: "0123456789ab.0"},
		{cmdline: "bootc.deployment=a/b.0 bootc.deployment=other/c.1", stateroot: "other", id: "c.1"},
		{cmdline: "root=/dev/vda rw", err: ErrNoKarg},
		{cmdline: "bootc.deployment=default", errText: "want <stateroot>/<id>"},
		{cmdline: "bootc.deployment=default/../x", errText: "invalid name"},
		{cmdline: `bootc.deployment="default/x`, errText: "unterminated quote"},
	}
	for _, tc := range tests {
		sr, id, err := DeploymentFromCmdline(tc.cmdline)
		switch {
		case tc.err != nil || tc.errText != "":
			if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("%q: got error %v, want %v %q", tc.cmdline, err, tc.err, tc.errText)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.cmdline, err)
		case sr != tc.stateroot || id != tc.id:
			t.Errorf("%q: got %s/%s, want %s/%s", tc.cmdline, sr, id, tc.stateroot, tc.id)
		}
	}
}

// call is one recorded mount(2).
type call struct {
	Source, Target string
	Flags          uintptr
}

// fakeSystem records mounts and answers statfs from a table (default: writable, relatime).
type fakeSystem struct {
	calls  []call
	flags  map[string]uintptr
	failAt int // 1-based index of the mount call that fails; 0 never
}

func (f *fakeSystem) Mount(source, target, fstype string, flags uintptr, data string) error {
	f.calls = append(f.calls, call{source, target, flags})
	if f.failAt == len(f.calls) {
		return syscall.EINVAL
	}
	return nil
}

func (f *fakeSystem) MountFlags(path string) (uintptr, error) {
	if v, ok := f.flags[path]; ok {
		return v, nil
	}
	return syscall.MS_RELATIME, nil
}

// physRoot lays out a physical root with one deployment whose image /etc holds a file, a
// setuid-free private file and a symbolic link.
func physRoot(t *testing.T) (base, sysroot, dep string) {
	t.Helper()
	base = t.TempDir()
	sysroot = filepath.Join(base, "sysroot")
	dep = filepath.Join(sysroot, "bootc/deploy/default/abc.0")
	etc := filepath.Join(dep, "usr/etc")
	for _, d := range []string{etc + "/ssh", dep + "/usr/bin"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	must(t, os.WriteFile(etc+"/hostname", []byte("sample\n"), 0o644))
	must(t, os.WriteFile(etc+"/ssh/secret", []byte("key\n"), 0o600))
	must(t, os.Symlink("../run/systemd/resolve/stub-resolv.conf", etc+"/resolv.conf"))
	return base, sysroot, dep
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestSetupSequence(t *testing.T) {
	for _, readOnly := range []bool{false, true} {
		base, sysroot, dep := physRoot(t)
		staging := filepath.Join(base, "staging")
		run := filepath.Join(base, "run/bootc")
		sys := &fakeSystem{flags: map[string]uintptr{}}
		if readOnly {
			sys.flags[sysroot] = syscall.MS_RDONLY | syscall.MS_NOSUID | syscall.MS_RELATIME
		}
		err := Setup(sys, Config{Sysroot: sysroot, Staging: staging, Run: run, Stateroot: "default", ID: "abc.0"})
		if err != nil {
			t.Fatal(err)
		}
		state := filepath.Join(sysroot, "bootc/state/default")
		ro := uintptr(syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_RDONLY | syscall.MS_RELATIME)
		want := []call{{"", "/", syscall.MS_REC | syscall.MS_PRIVATE}}
		if readOnly {
			// The superblock becomes writable; nosuid and relatime are kept.
			want = append(want, call{"", sysroot, syscall.MS_REMOUNT | syscall.MS_NOSUID | syscall.MS_RELATIME})
		}
		want = append(want,
			call{dep, staging, syscall.MS_BIND},
			call{state + "/abc.0/etc", staging + "/etc", syscall.MS_BIND},
			call{state + "/var", staging + "/var", syscall.MS_BIND},
			call{"", staging, ro},
			call{sysroot, staging + "/sysroot", syscall.MS_MOVE},
			call{"", staging + "/sysroot", ro},
			call{staging, sysroot, syscall.MS_MOVE},
		)
		if !reflect.DeepEqual(sys.calls, want) {
			t.Errorf("read-only=%v: mount calls\n got %v\nwant %v", readOnly, sys.calls, want)
		}

		// The writable /etc is a faithful copy of usr/etc.
		etc := state + "/abc.0/etc"
		if b, err := os.ReadFile(etc + "/hostname"); err != nil || string(b) != "sample\n" {
			t.Errorf("copied hostname: %q, %v", b, err)
		}
		if fi, err := os.Stat(etc + "/ssh/secret"); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("copied secret: %v, %v", fi, err)
		}
		if l, err := os.Readlink(etc + "/resolv.conf"); err != nil || l != "../run/systemd/resolve/stub-resolv.conf" {
			t.Errorf("copied symlink: %q, %v", l, err)
		}
		if _, err := os.Stat(etc + ".bootc-tmp"); !os.IsNotExist(err) {
			t.Errorf("temporary copy left behind: %v", err)
		}
		for _, d := range []string{state + "/var", dep + "/etc", dep + "/var", dep + "/sysroot"} {
			if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
				t.Errorf("%s not created: %v", d, err)
			}
		}
		var b struct {
			Version   int    `json:"version"`
			Stateroot string `json:"stateroot"`
			ID        string `json:"id"`
		}
		data, err := os.ReadFile(run + "/booted.json")
		must(t, err)
		must(t, json.Unmarshal(data, &b))
		if b.Version != 1 || b.Stateroot != "default" || b.ID != "abc.0" {
			t.Errorf("booted.json = %s", data)
		}
	}
}

func TestSetupKeepsExistingEtc(t *testing.T) {
	base, sysroot, _ := physRoot(t)
	etc := filepath.Join(sysroot, "bootc/state/default/abc.0/etc")
	must(t, os.MkdirAll(etc, 0o755))
	must(t, os.WriteFile(etc+"/hostname", []byte("edited\n"), 0o644))
	err := Setup(&fakeSystem{}, Config{Sysroot: sysroot, Staging: base + "/staging", Run: base + "/run", Stateroot: "default", ID: "abc.0"})
	must(t, err)
	if b, _ := os.ReadFile(etc + "/hostname"); string(b) != "edited\n" {
		t.Errorf("the existing /etc was overwritten: hostname %q", b)
	}
	if _, err := os.Stat(etc + "/ssh"); !os.IsNotExist(err) {
		t.Errorf("usr/etc was merged into the existing /etc: %v", err)
	}
}

func TestSetupErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(base, sysroot string) Config
		prepare func(t *testing.T, dep string)
		failAt  int
		err     error
		text    string
	}{
		{
			name: "missing deployment",
			cfg: func(base, sysroot string) Config {
				return Config{Sysroot: sysroot, Staging: base + "/st", Run: base + "/run", Stateroot: "default", ID: "nope.0"}
			},
			err: ErrNoDeployment, text: "default/nope.0",
		},
		{
			name: "no usr/etc",
			cfg: func(base, sysroot string) Config {
				return Config{Sysroot: sysroot, Staging: base + "/st", Run: base + "/run", Stateroot: "default", ID: "abc.0"}
			},
			prepare: func(t *testing.T, dep string) { must(t, os.RemoveAll(dep+"/usr/etc")) },
			text:    "has no usr/etc",
		},
		{
			name: "staging inside the sysroot",
			cfg: func(base, sysroot string) Config {
				return Config{Sysroot: sysroot, Staging: sysroot + "/st", Run: base + "/run", Stateroot: "default", ID: "abc.0"}
			},
			text: "must lie outside",
		},
		{
			name: "bad stateroot",
			cfg: func(base, sysroot string) Config {
				return Config{Sysroot: sysroot, Staging: base + "/st", Run: base + "/run", Stateroot: "..", ID: "abc.0"}
			},
			text: "invalid name",
		},
		{
			name: "move refused",
			cfg: func(base, sysroot string) Config {
				return Config{Sysroot: sysroot, Staging: base + "/st", Run: base + "/run", Stateroot: "default", ID: "abc.0"}
			},
			failAt: 6, text: "moving the physical root into the deployment",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base, sysroot, dep := physRoot(t)
			if tc.prepare != nil {
				tc.prepare(t, dep)
			}
			sys := &fakeSystem{failAt: tc.failAt}
			c := tc.cfg(base, sysroot)
			err := Setup(sys, c)
			if err == nil || (tc.err != nil && !errors.Is(err, tc.err)) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v containing %q", err, tc.err, tc.text)
			}
			if tc.failAt == 0 && len(sys.calls) != 0 {
				t.Errorf("mounted before the checks passed: %v", sys.calls)
			}
			if _, err := os.Stat(c.Run + "/booted.json"); !os.IsNotExist(err) {
				t.Errorf("booted.json written after a failure: %v", err)
			}
		})
	}
}

func TestRemount(t *testing.T) {
	sys := &fakeSystem{flags: map[string]uintptr{
		"/":        syscall.MS_RELATIME | syscall.MS_NODEV,
		"/sysroot": syscall.MS_RDONLY | syscall.MS_RELATIME,
	}}
	changed, err := Remount(sys, "/", "/sysroot")
	must(t, err)
	if !reflect.DeepEqual(changed, []string{"/"}) {
		t.Errorf("changed %v, want [/]", changed)
	}
	want := []call{{"", "/", syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_RDONLY | syscall.MS_RELATIME | syscall.MS_NODEV}}
	if !reflect.DeepEqual(sys.calls, want) {
		t.Errorf("calls %v, want %v", sys.calls, want)
	}
}
