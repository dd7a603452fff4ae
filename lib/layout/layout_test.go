package layout

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInitModes(t *testing.T) {
	dir := t.TempDir()
	r := New(filepath.Join(dir, "phys"), filepath.Join(dir, "run"))
	if r.IsDeployed() {
		t.Fatal("empty root reported as deployed")
	}
	// A pre-existing bootc/ with loose permissions is tightened.
	if err := os.MkdirAll(r.Bootc(), 0o777); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // repeatable
		if err := r.Init("default"); err != nil {
			t.Fatal(err)
		}
	}
	for path, mode := range map[string]os.FileMode{
		r.Bootc(): 0o700, r.Store(): 0o700, r.Deploy("default"): 0o700, r.State("default"): 0o700,
		r.Var("default"): 0o755, r.Boot: 0o755, r.BoundStorage(): 0o700,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %o, want %o", path, fi.Mode().Perm(), mode)
		}
	}
	if !r.IsDeployed() {
		t.Error("initialised root not reported as deployed")
	}
	if err := r.Init("../x"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Init(../x) = %v", err)
	}
}

func TestNames(t *testing.T) {
	for _, ok := range []string{"default", "a1b2c3d4e5f6.0", "state-2026-0", "_x", "A.b_c-d"} {
		if err := CheckName("id", ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", ".hidden", "-flag", "a/b", "a b", "a\x00b", string(make([]byte, 200))} {
		if err := CheckName("id", bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("CheckName(%q) = %v", bad, err)
		}
	}
}

func TestDeploymentKarg(t *testing.T) {
	sr, id, err := ParseDeploymentKarg(DeploymentKargValue("default", "abc.1"))
	if err != nil || sr != "default" || id != "abc.1" {
		t.Errorf("round trip: %q %q %v", sr, id, err)
	}
	for _, bad := range []string{"default", "default/", "/abc", "default/../x", "../../etc/abc", "a/b/c"} {
		if _, _, err := ParseDeploymentKarg(bad); err == nil {
			t.Errorf("ParseDeploymentKarg(%q) accepted", bad)
		}
	}
}

func TestPaths(t *testing.T) {
	r := New("/sysroot", "")
	for got, want := range map[string]string{
		r.Run:                                "/run/bootc",
		r.DeploymentRecord("default", "x.0"): "/sysroot/bootc/deploy/default/x.0.json",
		r.Etc("default", "x.0"):              "/sysroot/bootc/state/default/x.0/etc",
		r.Image("sha256:ab"):                 "/sysroot/bootc/images/sha256-ab",
		r.BootFiles("sha256:cd"):             "/sysroot/boot/bootc/sha256-cd",
		r.Entries():                          "/sysroot/boot/loader/entries",
		r.Staged():                           "/run/bootc/staged.json",
		r.Health():                           "/run/bootc/health.json",
		r.HealthFallback():                   "/run/bootc/health-fallback.json",
		r.DeploymentHealth("default", "x.0"): "/sysroot/bootc/state/default/x.0/health.json",
		r.CleanupPending():                   "/sysroot/bootc/cleanup-pending",
		r.FailedImages("default"):            "/sysroot/bootc/state/default/failed-images.json",
		r.PristineEtc("default", "x.0"):      "/sysroot/bootc/deploy/default/x.0/usr/etc",
		r.DeploymentState("default", "x.0"):  "/sysroot/bootc/state/default/x.0",
		r.Deploys():                          "/sysroot/bootc/deploy",
		r.States():                           "/sysroot/bootc/state",
		r.BootFilesRoot():                    "/sysroot/boot/bootc",
		BootFilesPath("sha256:cd"):           "/bootc/sha256-cd",
		LoaderGrubMenu(Loader("/boot")):      "/boot/loader/grub.cfg",
		LoaderEntries("/boot/loader.1"):      "/boot/loader.1/entries",
		LoaderConf("/efi"):                   "/efi/loader/loader.conf",
		GrubConfig("/boot"):                  "/boot/grub/grub.cfg",
		EFIRemovable("/efi", "x64"):          "/efi/EFI/BOOT/BOOTX64.EFI",
		EFISystemdBoot("/efi", "aa64"):       "/efi/EFI/systemd/systemd-bootaa64.efi",
		GrubEnv("/boot"):                     "/boot/grub/grubenv",
		BootcountVendorDir("/"):              "/usr/lib/bootc/bootcount.d",
		BootcountAdminDir("/etc"):            "/etc/bootc/bootcount.d",
		GreenbootConf("/etc"):                "/etc/greenboot/greenboot.conf",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}

func TestDigestDir(t *testing.T) {
	dg := "sha256:" + strings.Repeat("0a", 32)
	if got, ok := DirDigest(DigestDir(dg)); !ok || got != dg {
		t.Errorf("round trip of %s: %q %v", dg, got, ok)
	}
	for _, bad := range []string{"sha256-abc", ".sha256-" + strings.Repeat("0a", 32) + ".tmp", "sha512-" + strings.Repeat("0a", 64),
		"sha256-" + strings.Repeat("0A", 32), "sha256:" + strings.Repeat("0a", 32)} {
		if _, ok := DirDigest(bad); ok {
			t.Errorf("DirDigest(%q) accepted", bad)
		}
	}
}
