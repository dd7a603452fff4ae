package status

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gobootc.dev/lib/bootcount"
	"gobootc.dev/lib/efivar"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/spectest"
	"gobootc.dev/lib/sysroottest"
)

func build(t *testing.T, s *sysroottest.Sysroot, opts Options) *host.Host {
	t.Helper()
	opts.Root = s.Root
	h, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.MarshalCanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := spectest.ValidateHost(b); err != nil {
		t.Fatalf("status does not validate: %v\n%s", err, b)
	}
	return h
}

func imageVersion(e *host.BootEntry) string {
	if e == nil || e.Image == nil || e.Image.Version == nil {
		return ""
	}
	return *e.Image.Version
}

func TestNotDeployed(t *testing.T) {
	dir := t.TempDir()
	want, err := os.ReadFile("../../../shared/spec/fixtures/example-status-not-bootc.DERIVED.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]layout.Root{
		"missing root":   layout.New(filepath.Join(dir, "nothing"), filepath.Join(dir, "run")),
		"plain root dir": layout.New(dir, filepath.Join(dir, "run")),
	} {
		h, err := Build(Options{Root: r, Cmdline: "/proc/cmdline"})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, _ := h.MarshalCanonicalJSON()
		if string(got) != strings.TrimSpace(string(want)) {
			t.Errorf("%s:\ngot  %s\nwant %s", name, got, want)
		}
		var b strings.Builder
		Human(&b, h, false)
		if b.String() != NotDeployed+"\n" {
			t.Errorf("%s: human output %q", name, b.String())
		}
	}
}

func TestSlots(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Deploy("bbbb.0", "2")
	s.Deploy("cccc.0", "3", func(d *record.Deployment) { d.Kargs += " quiet" })
	s.Deploy("dddd.0", "0", func(d *record.Deployment) { d.Pinned = true })
	s.Deploy("eeee.0", "9") // left by an earlier finalize, waiting for garbage collection
	s.Entries("bbbb.0", "aaaa.0", "dddd.0")
	s.Boot("bbbb.0")
	s.Stage("cccc.0", true)

	h := build(t, s, Options{})
	st := h.Status
	if got := []string{imageVersion(st.Staged), imageVersion(st.Booted), imageVersion(st.Rollback)}; strings.Join(got, ",") != "3,2,1" {
		t.Errorf("staged,booted,rollback versions = %v", got)
	}
	if len(st.OtherDeployments) != 1 || !st.OtherDeployments[0].Pinned {
		t.Errorf("other deployments = %+v", st.OtherDeployments)
	}
	if !st.Staged.DownloadOnly || st.RollbackQueued || h.Spec.BootOrder != host.BootOrderDefault {
		t.Errorf("downloadOnly=%v rollbackQueued=%v bootOrder=%s", st.Staged.DownloadOnly, st.RollbackQueued, h.Spec.BootOrder)
	}
	if st.Type == nil || *st.Type != host.HostTypeBootc {
		t.Errorf("type = %v", st.Type)
	}
	if h.Spec.Image == nil || h.Spec.Image.Image != "127.0.0.1:5000/os:latest" {
		t.Errorf("spec.image = %+v", h.Spec.Image)
	}

	// The three formats carry the same document.
	js, _ := h.MarshalCanonicalJSON()
	ym, err := h.MarshalYAMLDoc()
	if err != nil {
		t.Fatal(err)
	}
	fromYAML, err := host.Parse(ym)
	if err != nil {
		t.Fatal(err)
	}
	js2, _ := fromYAML.MarshalCanonicalJSON()
	if string(js) != string(js2) {
		t.Errorf("YAML and JSON differ:\n%s\n%s", js, js2)
	}
	var human strings.Builder
	if err := Human(&human, h, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  Staged image: 127.0.0.1:5000/os:latest\n        Digest: " + sysroottest.Digest('c') + " (amd64)\n       Version: 3 (2026-01-03T12:00:00Z)\n",
		"● Booted image: 127.0.0.1:5000/os:latest\n        Digest: " + sysroottest.Digest('b') + " (amd64)\n",
		"  Rollback image: 127.0.0.1:5000/os:latest\n          Digest: " + sysroottest.Digest('a') + " (amd64)\n",
		"   Other image: 127.0.0.1:5000/os:latest\n        Digest: " + sysroottest.Digest('d') + " (amd64)\n       Version: 0 (2026-01-04T12:00:00Z)\n        Pinned: yes\n",
	} {
		if !strings.Contains(human.String(), want) {
			t.Errorf("human output lacks:\n%s\ngot:\n%s", want, human.String())
		}
	}
	if strings.Index(human.String(), "Staged") > strings.Index(human.String(), "Booted") {
		t.Error("staged is not listed before booted")
	}
}

// A new entry set lists the two given deployments first and keeps every pinned one; the
// unpinned rest (the old rollback, deployments awaiting collection) drop out.
func TestEntryOrder(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Deploy("bbbb.0", "2")
	s.Deploy("cccc.0", "3")
	s.Deploy("dddd.0", "0", func(d *record.Deployment) { d.Pinned = true })
	s.Deploy("eeee.0", "9")
	s.Entries("bbbb.0", "aaaa.0", "dddd.0")
	s.Boot("bbbb.0")
	s.Stage("cccc.0", false)
	st, err := Load(Options{Root: s.Root})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range st.EntryOrder(st.Staged, st.Booted) {
		got = append(got, d.ID)
	}
	if want := "cccc.0 bbbb.0 dddd.0"; strings.Join(got, " ") != want {
		t.Errorf("EntryOrder(staged, booted) = %v, want %s", got, want)
	}
}

func TestRollbackQueued(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Deploy("bbbb.0", "2")
	s.Entries("aaaa.0", "bbbb.0") // rollback sorts first: it boots next
	s.Boot("bbbb.0")
	h := build(t, s, Options{})
	if !h.Status.RollbackQueued || h.Spec.BootOrder != host.BootOrderRollback {
		t.Errorf("rollbackQueued=%v bootOrder=%s", h.Status.RollbackQueued, h.Spec.BootOrder)
	}
	if imageVersion(h.Status.Rollback) != "1" {
		t.Errorf("rollback = %+v", h.Status.Rollback)
	}
}

func TestBootedOnlyAndCmdline(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Deploy("bbbb.0", "2")
	s.Entries("bbbb.0", "aaaa.0")
	s.Stage("aaaa.0", false)
	// No initramfs marker: the kernel argument names the booted deployment.
	cmd := filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(cmd, []byte("root=UUID=1 "+layout.DeploymentKarg+"=default/bbbb.0 quiet\n"), 0o644)
	h := build(t, s, Options{Cmdline: cmd, BootedOnly: true})
	if imageVersion(h.Status.Booted) != "2" || h.Status.Staged != nil || h.Status.Rollback != nil {
		t.Errorf("booted-only status = %+v", h.Status)
	}
}

func TestCachedUpdateAndOverlay(t *testing.T) {
	s := sysroottest.New(t)
	booted := s.Deploy("aaaa.0", "1")
	s.Entries("aaaa.0")
	s.Boot("aaaa.0")
	upd := booted.Image
	upd.ManifestDigest, upd.Version = sysroottest.Digest('f'), "2"
	if err := record.Write(s.Root.CachedUpdate("default"), &record.CachedUpdate{Version: 1, Image: upd}); err != nil {
		t.Fatal(err)
	}
	if err := record.Write(s.Root.UsrOverlay(), &host.FilesystemOverlay{AccessMode: host.AccessReadWrite, Persistence: host.PersistenceTransient}); err != nil {
		t.Fatal(err)
	}
	h := build(t, s, Options{})
	if cu := h.Status.Booted.CachedUpdate; cu == nil || cu.ImageDigest != sysroottest.Digest('f') {
		t.Fatalf("cachedUpdate = %+v", cu)
	}
	var b strings.Builder
	Human(&b, h, false)
	for _, want := range []string{" UpdateVersion: 2 (", "  UpdateDigest: " + sysroottest.Digest('f'), "  /usr overlay: transient, read/write"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("human output lacks %q:\n%s", want, b.String())
		}
	}
	// A cached update for another image is not this host's update.
	upd.Ref.Image = "127.0.0.1:5000/other:latest"
	record.Write(s.Root.CachedUpdate("default"), &record.CachedUpdate{Version: 1, Image: upd})
	if h := build(t, s, Options{}); h.Status.Booted.CachedUpdate != nil {
		t.Errorf("cached update of another image shown: %+v", h.Status.Booted.CachedUpdate)
	}
}

func TestBrokenState(t *testing.T) {
	cases := map[string]func(s *sysroottest.Sysroot){
		"booted without record": func(s *sysroottest.Sysroot) { s.Boot("zzzz.0") },
		"staged without record": func(s *sysroottest.Sysroot) { s.Boot("aaaa.0"); s.Stage("zzzz.0", false) },
		"newer record format": func(s *sysroottest.Sysroot) {
			s.Boot("aaaa.0")
			p := s.Root.DeploymentRecord("default", "aaaa.0")
			b, _ := os.ReadFile(p)
			var m map[string]any
			json.Unmarshal(b, &m)
			m["version"] = 99
			b, _ = json.Marshal(m)
			os.WriteFile(p, b, 0o644)
		},
		"bad boot entry": func(s *sysroottest.Sysroot) {
			s.Boot("aaaa.0")
			os.WriteFile(filepath.Join(s.Root.Entries(), "x.conf"), []byte("title x\nlinux /k\noptions "+layout.DeploymentKarg+"=../../etc\n"), 0o644)
		},
	}
	for name, setup := range cases {
		t.Run(name, func(t *testing.T) {
			s := sysroottest.New(t)
			s.Deploy("aaaa.0", "1")
			s.Entries("aaaa.0")
			setup(s)
			_, err := Build(Options{Root: s.Root})
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

// countEntry renames a deployment's entry as systemd-boot does while counting its tries.
func countEntry(t *testing.T, s *sysroottest.Sysroot, from, to string) {
	t.Helper()
	if err := os.Rename(filepath.Join(s.Root.Entries(), from), filepath.Join(s.Root.Entries(), to)); err != nil {
		t.Fatal(err)
	}
}

// Entries carrying a boot counter are the same deployments': on trial the new deployment is
// booted and still the default; once bad it sorts last, so the previous deployment boots and
// the bad one is the rollback, not queued.
func TestSlotsWithBootCounter(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Deploy("bbbb.0", "2")
	s.Entries("bbbb.0", "aaaa.0")
	countEntry(t, s, "bootc-default-2.conf", "bootc-default-2+2-1.conf")
	s.Boot("bbbb.0")

	st, err := Load(Options{Root: s.Root})
	if err != nil {
		t.Fatal(err)
	}
	if st.Booted.ID != "bbbb.0" || st.Rollback == nil || st.Rollback.ID != "aaaa.0" || st.RollbackQueued() {
		t.Fatalf("on trial: booted %v, rollback %v, queued %v", st.Booted.ID, st.Rollback, st.RollbackQueued())
	}
	if st.Booted.Entry != "bootc-default-2+2-1.conf" || len(st.BootOrder) != 2 || st.BootOrder[0] != st.Booted {
		t.Errorf("booted entry %q, boot order %v", st.Booted.Entry, st.BootOrder)
	}
	if n, ok := st.Booted.BootName(); !ok || n.ID != "bootc-default-2" || n.State() != bootcount.Trial || n.Left != 2 || n.Done != 1 {
		t.Errorf("booted entry's counter = %+v, %v", n, ok)
	}
	if n, ok := st.Rollback.BootName(); !ok || n.State() != bootcount.Blessed {
		t.Errorf("rollback entry's counter = %+v, %v", n, ok)
	}
	h := build(t, s, Options{})
	if imageVersion(h.Status.Booted) != "2" || imageVersion(h.Status.Rollback) != "1" || h.Spec.BootOrder != host.BootOrderDefault {
		t.Errorf("on trial: booted %s, rollback %s, order %s", imageVersion(h.Status.Booted), imageVersion(h.Status.Rollback), h.Spec.BootOrder)
	}

	// The tries ran out and the boot loader fell back.
	countEntry(t, s, "bootc-default-2+2-1.conf", "bootc-default-2+0-3.conf")
	s.Boot("aaaa.0")
	st, err = Load(Options{Root: s.Root})
	if err != nil {
		t.Fatal(err)
	}
	if st.Booted.ID != "aaaa.0" || st.Rollback == nil || st.Rollback.ID != "bbbb.0" || st.RollbackQueued() {
		t.Fatalf("after the fallback: booted %v, rollback %v, queued %v", st.Booted.ID, st.Rollback, st.RollbackQueued())
	}
	if n, ok := st.Rollback.BootName(); !ok || n.State() != bootcount.Bad {
		t.Errorf("the failed deployment's entry = %+v, %v", n, ok)
	}
	h = build(t, s, Options{})
	if imageVersion(h.Status.Booted) != "1" || imageVersion(h.Status.Rollback) != "2" || h.Status.RollbackQueued {
		t.Errorf("after the fallback: booted %s, rollback %s, queued %v", imageVersion(h.Status.Booted), imageVersion(h.Status.Rollback), h.Status.RollbackQueued)
	}

	other := &Deployment{}
	if _, ok := other.BootName(); ok {
		t.Error("a deployment without an entry has a counter")
	}
}

// efivars returns an EFI variable directory; systemdBoot says systemd-boot booted this boot.
func efivars(t *testing.T, systemdBoot bool) string {
	t.Helper()
	dir := t.TempDir()
	if systemdBoot {
		if err := os.WriteFile(efivar.Path(dir, efivar.LoaderInfo), efivar.Encode("systemd-boot 257"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// armGrub writes grubenv as finalize and GRUB leave it: counting for deployment id.
func armGrub(t *testing.T, s *sysroottest.Sysroot, id string, counter int) {
	t.Helper()
	env := &bootcount.Env{}
	if err := env.Set(bootcount.VarTrial, layout.DeploymentKargValue("default", id)); err != nil {
		t.Fatal(err)
	}
	if err := env.SetBootCounter(counter); err != nil {
		t.Fatal(err)
	}
	if err := env.SetBootSuccess(false); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(layout.GrubDir(s.Root.Boot), 0o755)
	if err := bootcount.WriteEnv(layout.GrubEnv(s.Root.Boot), env); err != nil {
		t.Fatal(err)
	}
}

func human(t *testing.T, h *host.Host, verbose bool) string {
	t.Helper()
	var b strings.Builder
	if err := Human(&b, h, verbose); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func bootCount(e *host.BootEntry) string {
	switch {
	case e == nil:
		return "no entry"
	case e.BootCount == nil:
		return "none"
	}
	return fmt.Sprintf("%s/%d", e.BootCount.State, e.BootCount.TriesLeft)
}

// Boot counting in status: under systemd-boot the entry's name is the count; under GRUB the
// name keeps the tries it was armed with and grubenv counts; a blessed entry has no count.
func TestBootCount(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Deploy("bbbb.0", "2")
	s.Entries("bbbb.0", "aaaa.0")
	s.Boot("bbbb.0")
	sdboot, grub := efivars(t, true), efivars(t, false)

	h := build(t, s, Options{EFIVars: sdboot})
	if bootCount(h.Status.Booted) != "none" || bootCount(h.Status.Rollback) != "none" {
		t.Errorf("blessed entries: booted %s, rollback %s", bootCount(h.Status.Booted), bootCount(h.Status.Rollback))
	}
	if js, _ := h.MarshalCanonicalJSON(); strings.Contains(string(js), "bootCount") {
		t.Errorf("bootCount shown for blessed entries: %s", js)
	}
	if out := human(t, h, false); strings.Contains(out, "Boot counting") {
		t.Errorf("human output of blessed entries:\n%s", out)
	}

	// systemd-boot booted the new entry's first of two tries.
	countEntry(t, s, "bootc-default-2.conf", "bootc-default-2+1-1.conf")
	h = build(t, s, Options{EFIVars: sdboot})
	if bootCount(h.Status.Booted) != "trial/1" || bootCount(h.Status.Rollback) != "none" {
		t.Errorf("first try: booted %s, rollback %s", bootCount(h.Status.Booted), bootCount(h.Status.Rollback))
	}
	if out := human(t, h, false); !strings.Contains(out, "● Booted image: 127.0.0.1:5000/os:latest\n") ||
		!strings.Contains(out, "\n Boot counting: on trial, 1 try left\n") {
		t.Errorf("human output on trial:\n%s", out)
	}
	// The second and last try.
	countEntry(t, s, "bootc-default-2+1-1.conf", "bootc-default-2+0-2.conf")
	h = build(t, s, Options{EFIVars: sdboot})
	if bootCount(h.Status.Booted) != "trial/0" || !strings.Contains(human(t, h, false), "Boot counting: on trial, last try\n") {
		t.Errorf("last try: booted %s\n%s", bootCount(h.Status.Booted), human(t, h, false))
	}
	// It failed: the boot loader fell back to the old entry; the new one is bad.
	s.Boot("aaaa.0")
	h = build(t, s, Options{EFIVars: sdboot})
	if bootCount(h.Status.Booted) != "none" || bootCount(h.Status.Rollback) != "bad/0" {
		t.Errorf("after the fallback: booted %s, rollback %s", bootCount(h.Status.Booted), bootCount(h.Status.Rollback))
	}
	if out := human(t, h, false); !strings.Contains(out, "  Rollback image: 127.0.0.1:5000/os:latest\n") ||
		!strings.Contains(out, "\n   Boot counting: bad: out of tries, the boot loader boots another entry\n") {
		t.Errorf("human output after the fallback:\n%s", out)
	}

	// GRUB: the name keeps the armed tries, grubenv has the count.
	s.Boot("bbbb.0")
	countEntry(t, s, "bootc-default-2+0-2.conf", "bootc-default-2+3.conf")
	armGrub(t, s, "bbbb.0", 1)
	if h := build(t, s, Options{EFIVars: grub}); bootCount(h.Status.Booted) != "trial/1" {
		t.Errorf("GRUB counting: booted %s, want trial/1 from grubenv", bootCount(h.Status.Booted))
	}
	// A disk with both boot loaders that systemd-boot booted: the name counts, not grubenv.
	if h := build(t, s, Options{EFIVars: sdboot}); bootCount(h.Status.Booted) != "trial/3" {
		t.Errorf("systemd-boot on a disk with grubenv: booted %s, want trial/3 from the name", bootCount(h.Status.Booted))
	}
	// The variables' directory from the environment, as bootc-health takes it.
	t.Setenv(efivar.EnvDir, sdboot)
	if h := build(t, s, Options{}); bootCount(h.Status.Booted) != "trial/3" {
		t.Errorf("$%s naming systemd-boot's variables: booted %s, want trial/3", efivar.EnvDir, bootCount(h.Status.Booted))
	}
	// Under GRUB, a counted name that grubenv does not count for is not counted at all.
	armGrub(t, s, "aaaa.0", 1)
	if h := build(t, s, Options{EFIVars: grub}); bootCount(h.Status.Booted) != "none" || bootCount(h.Status.Rollback) != "none" {
		t.Errorf("grubenv naming another deployment: booted %s, rollback %s", bootCount(h.Status.Booted), bootCount(h.Status.Rollback))
	}
	os.Remove(layout.GrubEnv(s.Root.Boot))
	if h := build(t, s, Options{EFIVars: grub}); bootCount(h.Status.Booted) != "none" {
		t.Errorf("GRUB without grubenv: booted %s", bootCount(h.Status.Booted))
	}
	// GRUB gave up (-1) and booted the previous deployment.
	armGrub(t, s, "bbbb.0", -1)
	s.Entries("aaaa.0", "bbbb.0")
	countEntry(t, s, "bootc-default-1.conf", "bootc-default-1+3.conf")
	s.Boot("aaaa.0")
	if h := build(t, s, Options{EFIVars: grub}); bootCount(h.Status.Booted) != "none" || bootCount(h.Status.Rollback) != "bad/0" {
		t.Errorf("GRUB fallback: booted %s, rollback %s", bootCount(h.Status.Booted), bootCount(h.Status.Rollback))
	}
	// A grubenv that is not a block GRUB wrote: status does not fail, it leaves counting out.
	os.WriteFile(layout.GrubEnv(s.Root.Boot), []byte("garbage"), 0o644)
	if h := build(t, s, Options{EFIVars: grub}); bootCount(h.Status.Rollback) != "none" {
		t.Errorf("unreadable grubenv: rollback %s", bootCount(h.Status.Rollback))
	}
}

// redHealth is the record of a boot whose required check failed.
func redHealth(stateroot, id, bootID string) *record.Health {
	code := 1
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	const check = "/etc/greenboot/check/required.d/10-app.sh"
	return &record.Health{Version: 1, Stateroot: stateroot, ID: id, BootID: bootID, Verdict: record.Red, Failed: check,
		Started: t0, Finished: t0.Add(3 * time.Second),
		Checks: []record.HealthCheck{
			{Path: "/usr/lib/greenboot/check/required.d/00-ok.sh", Kind: "required", Type: "script", Outcome: record.CheckPassed},
			{Path: check, Kind: "required", Type: "script", Outcome: record.CheckFailed, ExitStatus: &code,
				LastLines: []string{"connecting to db", "app not ready"}},
		}}
}

func TestHealth(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Deploy("bbbb.0", "2")
	s.Entries("bbbb.0", "aaaa.0")
	s.Boot("bbbb.0")
	opts := Options{BootID: "boot-1", EFIVars: efivars(t, false)}
	if h := build(t, s, opts); h.Status.Health != nil {
		t.Fatalf("health before the checks ran: %+v", h.Status.Health)
	}

	if err := record.Write(s.Root.Health(), redHealth("default", "bbbb.0", "boot-1")); err != nil {
		t.Fatal(err)
	}
	h := build(t, s, opts)
	got := h.Status.Health
	if got == nil || got.Verdict != "RED" || got.FailedCheck != "/etc/greenboot/check/required.d/10-app.sh" ||
		got.Reason != "exit code '1'" || strings.Join(got.LastLines, "|") != "connecting to db|app not ready" ||
		!got.Time.Equal(time.Date(2026, 3, 2, 8, 0, 3, 0, time.UTC)) {
		t.Fatalf("health = %+v", got)
	}
	const red = "Boot health: RED — required check /etc/greenboot/check/required.d/10-app.sh failed (exit code '1'): app not ready\n"
	if out := human(t, h, false); !strings.HasSuffix(out, "\n\n"+red) {
		t.Errorf("human output lacks the RED line at the end:\n%s", out)
	}
	if out := human(t, h, true); !strings.Contains(out, red+"    | connecting to db\n    | app not ready\n") {
		t.Errorf("verbose human output lacks the check's last lines:\n%s", out)
	}
	roundTrip(t, h)

	// A record left by another boot, or about another deployment, is not this boot's verdict.
	if h := build(t, s, Options{BootID: "boot-2", EFIVars: opts.EFIVars}); h.Status.Health != nil {
		t.Errorf("another boot's record shown: %+v", h.Status.Health)
	}
	record.Write(s.Root.Health(), redHealth("default", "aaaa.0", "boot-1"))
	if h := build(t, s, opts); h.Status.Health != nil {
		t.Errorf("another deployment's record shown: %+v", h.Status.Health)
	}
	// A record not naming its boot and deployment (a host not booted through bootc) counts.
	record.Write(s.Root.Health(), redHealth("", "", ""))
	if h := build(t, s, opts); h.Status.Health == nil {
		t.Error("a record naming no boot was not shown")
	}

	green := &record.Health{Version: 1, Stateroot: "default", ID: "bbbb.0", BootID: "boot-1", Verdict: record.Green,
		Finished: time.Date(2026, 3, 2, 8, 0, 3, 0, time.UTC), Assessment: &record.HealthAssessment{Action: "blessed"}}
	record.Write(s.Root.Health(), green)
	h = build(t, s, opts)
	if h.Status.Health == nil || h.Status.Health.Verdict != "GREEN" || h.Status.Health.FailedCheck != "" || h.Status.Health.Assessment != "blessed" {
		t.Errorf("green health = %+v", h.Status.Health)
	}
	if out := human(t, h, false); !strings.HasSuffix(out, "\nBoot health: GREEN (checked at 2026-03-02T08:00:03Z)\n") {
		t.Errorf("human output:\n%s", out)
	}
}

func TestFailedUpdates(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Entries("aaaa.0")
	s.Boot("aaaa.0")
	at := time.Date(2026, 3, 2, 8, 5, 0, 0, time.UTC)
	for _, fi := range []record.FailedImage{
		{ManifestDigest: sysroottest.Digest('c'), Image: "127.0.0.1:5000/os:latest", ID: "cccc.0", Time: at, Tries: 2,
			Reason: "never reached a healthy boot in 2 tries (no health check ran: the kernel or initramfs failed)"},
		{ManifestDigest: sysroottest.Digest('d'), ID: "dddd.0", Time: at.Add(time.Hour), Tries: 2,
			Reason: "required check failed: exit code '1'", Check: "/etc/greenboot/check/required.d/10-app.sh",
			LastLines: []string{"connecting to db", "app not ready"}},
	} {
		if err := record.AddFailedImage(s.Root, "default", fi); err != nil {
			t.Fatal(err)
		}
	}
	// Another stateroot's failures are not this host's updates.
	record.AddFailedImage(s.Root, "other", record.FailedImage{ManifestDigest: sysroottest.Digest('e'), ID: "eeee.0", Time: at})

	h := build(t, s, Options{EFIVars: efivars(t, false)})
	f := h.Status.FailedUpdates
	if len(f) != 2 || f[0].Digest != sysroottest.Digest('c') || f[0].Deployment != "default/cccc.0" || f[0].Tries != 2 ||
		f[1].Check != "/etc/greenboot/check/required.d/10-app.sh" || len(f[1].LastLines) != 2 || !f[1].Time.Equal(at.Add(time.Hour)) {
		t.Fatalf("failedUpdates = %+v", f)
	}
	want := "\n\nFailed update: 127.0.0.1:5000/os:latest (sha256:cccccccccccc) failed at 2026-03-02T08:05:00Z: never reached a healthy boot in 2 tries (no health check ran: the kernel or initramfs failed)\n" +
		"Failed update: default/dddd.0 (sha256:dddddddddddd) failed at 2026-03-02T09:05:00Z: required check failed: exit code '1' (check /etc/greenboot/check/required.d/10-app.sh): app not ready\n" +
		"Updates to a failed image are not staged again; --allow-failed stages one all the same.\n"
	if out := human(t, h, false); !strings.HasSuffix(out, want) {
		t.Errorf("human output:\n%s\nwant it to end with:\n%s", out, want)
	}
	roundTrip(t, h)
	// Only the booted deployment is wanted: the failed updates are the host's all the same.
	if h := build(t, s, Options{BootedOnly: true}); len(h.Status.FailedUpdates) != 2 {
		t.Errorf("--booted: failedUpdates = %+v", h.Status.FailedUpdates)
	}
}

// roundTrip checks that YAML and JSON carry the same document, the additions included.
func roundTrip(t *testing.T, h *host.Host) {
	t.Helper()
	js, _ := h.MarshalCanonicalJSON()
	ym, err := h.MarshalYAMLDoc()
	if err != nil {
		t.Fatal(err)
	}
	for _, enc := range [][]byte{js, ym} {
		back, err := host.Parse(enc)
		if err != nil {
			t.Fatal(err)
		}
		if js2, _ := back.MarshalCanonicalJSON(); string(js2) != string(js) {
			t.Errorf("round trip changed the document:\n%s\n%s", js, js2)
		}
	}
}
