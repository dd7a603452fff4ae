package status

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/bootcount"
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
