package rootsetup

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gobootc.dev/lib/bootloader"
	"gobootc.dev/lib/efivar"
)

func TestArmTrialReboot(t *testing.T) {
	const entry = `\loader\entries\bootc-default-0123456789ab.0+1-1.conf`
	cases := []struct {
		name    string
		initrd  bool
		vars    map[string][]byte // efivarfs files; nil: no efivars directory at all (BIOS)
		armed   bool
		entry   string
		wantErr error
	}{
		{name: "BIOS boot", initrd: true},
		{name: "EFI, another boot loader", initrd: true, vars: map[string][]byte{
			"BootCurrent-8be4df61-93ca-11d2-aa0d-00e098032b8c": {7, 0, 0, 0, 1, 0},
		}},
		{name: "systemd-boot, entry without a counter", initrd: true, vars: map[string][]byte{
			efivar.Path("", efivar.LoaderInfo):         efivar.Encode("systemd-boot 257"),
			"LoaderEntrySelected-" + efivar.LoaderGUID: efivar.Encode("bootc-default-0123456789ab.0.conf"),
		}},
		{name: "systemd-boot, counted entry", initrd: true, armed: true, entry: entry, vars: map[string][]byte{
			efivar.Path("", efivar.LoaderInfo):          efivar.Encode("systemd-boot 257"),
			efivar.Path("", efivar.LoaderBootCountPath): efivar.Encode(entry),
		}},
		{name: "counted entry, unreadable value", initrd: true, armed: true, entry: "", vars: map[string][]byte{
			efivar.Path("", efivar.LoaderBootCountPath): {7, 0},
		}},
		{name: "not an initramfs", vars: map[string][]byte{efivar.Path("", efivar.LoaderBootCountPath): efivar.Encode(entry)}, wantErr: ErrNotInitrd},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			root := filepath.Join(dir, "root")
			efivars := filepath.Join(dir, "efivars")
			must(t, os.MkdirAll(filepath.Join(root, "etc"), 0o755))
			if c.initrd {
				must(t, os.WriteFile(filepath.Join(root, InitrdRelease), []byte("NAME=initramfs\n"), 0o644))
			}
			if c.vars != nil {
				must(t, os.Mkdir(efivars, 0o755))
			}
			for name, data := range c.vars {
				must(t, os.WriteFile(filepath.Join(efivars, name), data, 0o644))
			}
			for i := 0; i < 2; i++ { // running again changes nothing
				got, armed, err := ArmTrialReboot(root, efivars)
				if !errors.Is(err, c.wantErr) || (err != nil && c.wantErr == nil) {
					t.Fatalf("run %d: error %v, want %v", i, err, c.wantErr)
				}
				if armed != c.armed || got != c.entry {
					t.Errorf("run %d: armed %v entry %q, want %v %q", i, armed, got, c.armed, c.entry)
				}
			}
			data, err := os.ReadFile(filepath.Join(root, TrialCmdline))
			switch {
			case c.armed && err != nil:
				t.Errorf("armed, but %v", err)
			case c.armed && string(data) != "rd.shell=0 rd.emergency=reboot\n":
				t.Errorf("%s holds %q", TrialCmdline, data)
			case !c.armed && err == nil:
				t.Errorf("not armed, but %s holds %q", TrialCmdline, data)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(root, "run/bootc/*.tmp")); len(leftovers) > 0 {
				t.Errorf("temporary files left: %v", leftovers)
			}
		})
	}
}

// An efivars directory that cannot be read is an error, not a silent "not on trial".
func TestArmTrialRebootUnreadable(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, InitrdRelease), nil, 0o644))
	efivars := filepath.Join(dir, "efivars")
	must(t, os.MkdirAll(filepath.Join(efivars, efivar.Path("", efivar.LoaderBootCountPath)), 0o755)) // a directory: reading fails
	if _, armed, err := ArmTrialReboot(dir, efivars); err == nil || armed {
		t.Errorf("got armed=%v err=%v, want an error", armed, err)
	}
}

// The initramfs is told what GRUB adds to a trial entry's command line: both boot loaders end
// a failed try the same way.
func TestTrialArgsMatchGRUB(t *testing.T) {
	if TrialArgs != bootloader.TrialArgs {
		t.Errorf("rootsetup.TrialArgs = %q, bootloader.TrialArgs = %q", TrialArgs, bootloader.TrialArgs)
	}
}

func TestOnTrial(t *testing.T) {
	root := t.TempDir()
	for cmdline, want := range map[string]bool{
		"root=UUID=1 rw panic=10 bootc.deployment=default/a.0":                                false,
		"root=UUID=1 rw panic=10 bootc.deployment=default/a.0 rd.shell=0 rd.emergency=reboot": true,
		"rd.emergency=reboot\n": true,
		"rd.emergency=rebooted": false,
	} {
		if got := OnTrial(root, cmdline); got != want {
			t.Errorf("OnTrial(%q) = %v, want %v", cmdline, got, want)
		}
	}
	must(t, os.MkdirAll(filepath.Join(root, filepath.Dir(TrialCmdline)), 0o755))
	must(t, os.WriteFile(filepath.Join(root, TrialCmdline), []byte(TrialArgs+"\n"), 0o644))
	if !OnTrial(root, "root=UUID=1") {
		t.Error("OnTrial is false with the trial arguments armed for systemd-boot")
	}
}
