package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/generators/rootsetup"
	"gobootc.dev/lib/efivar"
	"gobootc.dev/lib/envtest"
)

func TestRunUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{nil, "no subcommand"},
		{[]string{"mount"}, `unknown subcommand "mount"`},
		{[]string{"setup", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"remount", "extra"}, `unexpected argument "extra"`},
		{[]string{"setup", "--cmdline", "/nonexistent/cmdline"}, "reading the kernel command line"},
	}
	for _, tc := range tests {
		err := run(tc.args, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.args, err, tc.want)
		}
	}
	cmdline := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(cmdline, []byte("root=/dev/vda rw\n"), 0o644)
	err := run([]string{"setup", "--cmdline", cmdline}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no bootc.deployment= kernel argument") {
		t.Errorf("no karg: got %v", err)
	}
}

// generate, as the initramfs's generator: the trial arguments appear exactly when systemd-boot
// says it booted a counted entry.
func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	root, efivars := filepath.Join(dir, "root"), filepath.Join(dir, "efivars")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(efivars, 0o755)
	os.WriteFile(filepath.Join(root, rootsetup.InitrdRelease), nil, 0o644)
	args := []string{"generate", "--root", root, "--efivars", efivars}
	conf := filepath.Join(root, rootsetup.TrialCmdline)

	var out bytes.Buffer
	if err := run(args, &out); err != nil || out.Len() != 0 {
		t.Fatalf("no counted entry: %v, output %q", err, out.String())
	}
	if _, err := os.Stat(conf); err == nil {
		t.Fatalf("no counted entry, but %s was written", conf)
	}
	// \loader\entries\bootc-1+1-1.conf as systemd-boot stores it: attributes, UTF-16LE, NUL.
	v := []byte{7, 0, 0, 0}
	for _, c := range `\loader\entries\bootc-1+1-1.conf` {
		v = append(v, byte(c), 0)
	}
	os.WriteFile(filepath.Join(efivars, efivar.Path("", efivar.LoaderBootCountPath)), append(v, 0, 0), 0o644)
	if err := run(args, &out); err != nil {
		t.Fatal(err)
	}
	if want := `systemd-boot booted \loader\entries\bootc-1+1-1.conf on trial`; !strings.Contains(out.String(), want) {
		t.Errorf("output %q lacks %q", out.String(), want)
	}
	if data, err := os.ReadFile(conf); err != nil || string(data) != "rd.shell=0 rd.emergency=reboot\n" {
		t.Errorf("%s: %q %v", conf, data, err)
	}
}

// Called by its generator name, the command runs generate with systemd's arguments ignored; on
// a host (no /etc/initrd-release) it refuses to write the host's /etc.
func TestGeneratorName(t *testing.T) {
	if _, err := os.Stat("/" + rootsetup.InitrdRelease); err == nil {
		envtest.Missing(t, "a host whose / is not an initramfs")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootc-root-setup")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	gen := filepath.Join(dir, GeneratorName)
	must(t, os.Symlink(bin, gen))
	out, err := exec.Command(gen, dir+"/normal", dir+"/early", dir+"/late").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "making a failed boot on trial reboot: not an initramfs") {
		t.Errorf("as a generator on the host: %v\n%s", err, out)
	}
	if _, err := os.Stat("/" + rootsetup.TrialCmdline); err == nil {
		t.Errorf("/%s exists on this host", rootsetup.TrialCmdline)
	}
}

// The dracut module installs the generator under the name main checks for, and the link dracut
// reads the trial arguments through, to where generate writes them.
func TestDracutModule(t *testing.T) {
	data, err := os.ReadFile("../../../dracut/51bootc/module-setup.sh")
	must(t, err)
	for _, want := range []string{
		`ln_r "$bin" "$systemdutildir/system-generators/` + GeneratorName + `"`,
		`ln -sfn /` + rootsetup.TrialCmdline + ` "$initdir/` + rootsetup.TrialCmdlineLink + `"`,
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("dracut/51bootc/module-setup.sh lacks %s", want)
		}
	}
}

func TestKmsg(t *testing.T) {
	var b bytes.Buffer
	n, err := kmsg{&b, 5}.Write([]byte("bootc-root-setup: one\nbootc-root-setup: two\n"))
	if err != nil || n != 44 || b.String() != "<5>bootc-root-setup: one\n<5>bootc-root-setup: two\n" {
		t.Errorf("wrote %d %v: %q", n, err, b.String())
	}
}

// realMounts runs the built command against an ext4 file system on a loop device, in a private
// mount namespace, the way the initramfs and the booted host run it.
const realMounts = `
set -eu
T=$1 BIN=$2
mount --make-rprivate /
mkdir -p $T/sysroot
truncate -s 64M $T/disk.img
mkfs.ext4 -q $T/disk.img
L=$(losetup -f --show $T/disk.img)
trap 'umount -R $T/sysroot 2>/dev/null; losetup -d $L' EXIT
mount $L $T/sysroot
D=$T/sysroot/bootc/deploy/default/abc.0
mkdir -p $D/usr/etc $D/usr/bin
echo sample >$D/usr/etc/hostname
# As sysroot.mount does without rw on the kernel command line.
mount -o remount,ro $T/sysroot
echo "root=/dev/vda bootc.deployment=default/abc.0" >$T/cmdline
$BIN setup --sysroot $T/sysroot --staging $T/staging --run-dir $T/run --cmdline $T/cmdline
echo "booted: $(tr -d ' \n' <$T/run/booted.json)"
for p in $T/sysroot $T/sysroot/usr $T/sysroot/sysroot $T/sysroot/etc $T/sysroot/var; do
  if touch $p/probe 2>/dev/null; then echo "writable: ${p#$T}"; else echo "read-only: ${p#$T}"; fi
done
echo "hostname: $(cat $T/sysroot/etc/hostname)"
# As systemd-remount-fs does with rw on the kernel command line.
mount -o remount,rw $T/sysroot
touch $T/sysroot/probe && echo "after remount-fs: / writable"
$BIN remount --root $T/sysroot --sysroot $T/sysroot/sysroot
touch $T/sysroot/probe2 2>/dev/null || echo "after remount: / read-only"
touch $T/sysroot/etc/probe2 && echo "after remount: /etc writable"
`

func TestRealMounts(t *testing.T) {
	envtest.NeedRoot(t)
	envtest.NeedTool(t, "unshare", "losetup", "mkfs.ext4")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bootc-root-setup")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command("unshare", "--mount", "sh", "-c", realMounts, "sh", dir, bin).CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{
		"remounting the physical root",
		"first boot of default/abc.0: copying usr/etc",
		`booted: {"version":1,"stateroot":"default","id":"abc.0"}`,
		"read-only: /sysroot\n",
		"read-only: /sysroot/usr\n",
		"read-only: /sysroot/sysroot\n",
		"writable: /sysroot/etc\n",
		"writable: /sysroot/var\n",
		"hostname: sample\n",
		"after remount-fs: / writable",
		"made " + dir + "/sysroot read-only again",
		"after remount: / read-only",
		"after remount: /etc writable",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
