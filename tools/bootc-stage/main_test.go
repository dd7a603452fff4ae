package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gobootc.dev/lib/cli"
	dt "gobootc.dev/lib/deploy/deploytest"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/spectest"
	"gobootc.dev/lib/status"
	"gobootc.dev/lib/sysroottest"
)

const sr = layout.DefaultStateroot

type env struct {
	dir     string
	r       layout.Root
	reboot  string
	cmdline string
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	e := &env{dir: dir, r: layout.New(filepath.Join(dir, "phys"), filepath.Join(dir, "run")),
		reboot: filepath.Join(dir, "run-reboot-required"), cmdline: filepath.Join(dir, "cmdline")}
	if err := os.WriteFile(e.cmdline, []byte("root=UUID=1 rw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.r.Init(sr); err != nil {
		t.Fatal(err)
	}
	return e
}

type outcome struct {
	code                int
	stdout, stderr, log string
	res                 *Result
}

var journalMu sync.Mutex

// run runs the command as main does, with the root's paths and a --result file.
func (e *env) run(t *testing.T, args ...string) outcome {
	t.Helper()
	journalMu.Lock()
	defer journalMu.Unlock()
	var stdout, stderr, log bytes.Buffer
	prev := journal.SetFallback(&log)
	defer journal.SetFallback(prev)
	resPath := filepath.Join(e.dir, "result.json")
	os.Remove(resPath)
	all := append([]string{"--sysroot", e.r.Phys, "--run-dir", e.r.Run, "--cmdline", e.cmdline,
		"--reboot-required-file", e.reboot, "--result", resPath}, args...)
	c := &CLI{}
	code := cli.Run(name, description, c, all, &stdout, &stderr, c.runner(&stdout, &stderr))
	o := outcome{code: code, stdout: stdout.String(), stderr: stderr.String(), log: log.String()}
	if data, err := os.ReadFile(resPath); err == nil {
		o.res = &Result{}
		if err := json.Unmarshal(data, o.res); err != nil {
			t.Fatalf("result: %v\n%s", err, data)
		}
	}
	return o
}

func (e *env) mustStage(t *testing.T, args ...string) outcome {
	t.Helper()
	o := e.run(t, append([]string{"--no-arm"}, args...)...)
	if o.code != 0 || o.res == nil {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", o.code, o.stdout, o.stderr)
	}
	return o
}

func (e *env) staged(t *testing.T) *record.Staged {
	t.Helper()
	s, err := record.ReadStaged(e.r)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *env) deployments(t *testing.T) []string {
	t.Helper()
	all, err := record.ListDeployments(e.r)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range all {
		ids = append(ids, d.ID)
	}
	return ids
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestFirstStage(t *testing.T) {
	e := newEnv(t)
	v1 := dt.Fetch(t, e.r, "1.0", dt.OS("kernel-1", "initrd-1", "quiet"))
	o := e.run(t, "--image", v1.ManifestDigest, "--karg", "root=UUID=1", "--karg", "console=ttyS0,115200n8")
	if o.code != 0 {
		t.Fatalf("exit %d: %s", o.code, o.stderr)
	}
	res := o.res
	if !res.Staged || res.Reason != "" || res.Armed || res.Image != v1.ManifestDigest || res.Version != "1.0" {
		t.Errorf("result = %+v", res)
	}
	if res.Kargs != "root=UUID=1 console=ttyS0,115200n8 quiet" {
		t.Errorf("kargs = %q (a comma inside --karg must not split it)", res.Kargs)
	}
	if s := e.staged(t); s.ID != res.ID || s.Stateroot != sr || s.DownloadOnly {
		t.Errorf("staged record = %+v, result id %s", s, res.ID)
	}
	if res.BootDigest != dt.Sha256("kernel-1", "initrd-1") || !exists(filepath.Join(e.r.BootFiles(res.BootDigest), "vmlinuz")) {
		t.Errorf("boot files not installed under %s", res.BootDigest)
	}
	if got := read(t, e.reboot); got != "bootc: Reboot required for image: "+v1.ManifestDigest+"\n" {
		t.Errorf("reboot-required = %q", got)
	}
	if !exists(e.r.StatusStamp()) {
		t.Error("status stamp not written")
	}
	if !strings.Contains(o.log, "Staged deployment default/"+res.ID) {
		t.Errorf("journal message missing: %q", o.log)
	}
	if !strings.Contains(o.stderr, "bootc-finalize.service was not started") {
		t.Errorf("no note about the finalize unit: %q", o.stderr)
	}
	for _, want := range []string{"Queued for next boot: " + dt.Ref, "Version: 1.0", "Digest: " + v1.ManifestDigest} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, o.stdout)
		}
	}
}

// bootV1 stages v1 on an empty root and boots it, as finalize and the next boot would.
func bootV1(t *testing.T, e *env, files []dt.File) string {
	t.Helper()
	v1 := dt.Fetch(t, e.r, "1", files)
	o := e.mustStage(t, "--image", v1.ManifestDigest, "--karg", "root=UUID=1")
	dt.Boot(t, e.r, o.res.ID, o.res.ID)
	return o.res.ID
}

func TestStageWhileBooted(t *testing.T) {
	e := newEnv(t)
	id1 := bootV1(t, e, dt.OS("k1", "i1", "quiet", "old=1"))
	// The administrator added an argument on this machine.
	d1, _ := record.ReadDeployment(e.r, sr, id1)
	d1.Kargs += " local=yes"
	if err := record.WriteDeployment(e.r, d1); err != nil {
		t.Fatal(err)
	}
	v2 := dt.Fetch(t, e.r, "2", dt.OS("k2", "i2", "quiet", "new=2"))
	o := e.mustStage(t, "--image", v2.ManifestDigest, "--download-only")
	if want := "root=UUID=1 quiet local=yes new=2"; o.res.Kargs != want {
		t.Errorf("kargs = %q, want %q", o.res.Kargs, want)
	}
	if !e.staged(t).DownloadOnly || !o.res.DownloadOnly {
		t.Error("download-only not recorded")
	}

	h, err := status.Build(status.Options{Root: e.r})
	if err != nil {
		t.Fatal(err)
	}
	if h.Status.Staged == nil || h.Status.Staged.Image.ImageDigest != v2.ManifestDigest || !h.Status.Staged.DownloadOnly {
		t.Fatalf("status staged slot = %+v", h.Status.Staged)
	}
	if h.Status.Booted == nil || h.Status.Booted.Image.ImageDigest != d1.Image.ManifestDigest {
		t.Errorf("status booted slot = %+v", h.Status.Booted)
	}
	doc, err := h.MarshalCanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := spectest.ValidateHost(doc); err != nil {
		t.Errorf("status document invalid: %v\n%s", err, doc)
	}
}

func TestSameImageTwice(t *testing.T) {
	e := newEnv(t)
	bootV1(t, e, dt.OS("k1", "i1"))
	v2 := dt.Fetch(t, e.r, "2", dt.OS("k2", "i2"))
	first := e.mustStage(t, "--image", v2.ManifestDigest)
	before := e.deployments(t)

	o := e.mustStage(t, "--image", v2.ManifestDigest)
	if o.res.Staged || o.res.Reason != "already-staged" || o.res.ID != first.res.ID {
		t.Errorf("result = %+v", o.res)
	}
	if !strings.Contains(o.stdout, "Image "+v2.ManifestDigest+" is already staged") {
		t.Errorf("stdout = %q", o.stdout)
	}
	if got := e.deployments(t); strings.Join(got, " ") != strings.Join(before, " ") {
		t.Errorf("deployments changed: %v → %v", before, got)
	}
	// Asking again with --download-only only flips the flag.
	o = e.mustStage(t, "--image", v2.ManifestDigest, "--download-only")
	if s := e.staged(t); !s.DownloadOnly || s.ID != first.res.ID || !strings.Contains(o.stdout, "will not be applied") {
		t.Errorf("staged = %+v, stdout %q", s, o.stdout)
	}
}

func TestAlreadyBooted(t *testing.T) {
	e := newEnv(t)
	id1 := bootV1(t, e, dt.OS("k1", "i1"))
	d1, _ := record.ReadDeployment(e.r, sr, id1)

	o := e.mustStage(t, "--image", d1.Image.ManifestDigest)
	if o.res.Staged || o.res.Reason != "already-booted" || !strings.Contains(o.stdout, "is already booted; nothing to stage") {
		t.Errorf("result %+v, stdout %q", o.res, o.stdout)
	}
	if exists(e.r.Staged()) {
		t.Error("something was staged")
	}

	// With another image staged, asking for the booted one discards the staged deployment.
	v2 := dt.Fetch(t, e.r, "2", dt.OS("k2", "i2"))
	staged := e.mustStage(t, "--image", v2.ManifestDigest)
	o = e.mustStage(t, "--image", d1.Image.ManifestDigest)
	if o.res.Unstaged != staged.res.ID || exists(e.r.Staged()) {
		t.Errorf("result %+v; staged record exists: %v", o.res, exists(e.r.Staged()))
	}
	if exists(e.r.Deployment(sr, staged.res.ID)) || exists(e.reboot) {
		t.Error("the discarded deployment or the reboot-required file survived")
	}
	if ids := e.deployments(t); len(ids) != 1 || ids[0] != id1 {
		t.Errorf("deployments = %v, want only %s", ids, id1)
	}
}

func TestRestageReplaces(t *testing.T) {
	e := newEnv(t)
	id1 := bootV1(t, e, dt.OS("k1", "i1"))
	v2 := dt.Fetch(t, e.r, "2", dt.OS("k2", "i2"))
	s2 := e.mustStage(t, "--image", v2.ManifestDigest)
	// Fetched after the first stage: garbage collection removes images no deployment uses.
	v3 := dt.Fetch(t, e.r, "3", dt.OS("k3", "i3"))
	s3 := e.mustStage(t, "--image", v3.ManifestDigest)
	if s3.res.Replaced != s2.res.ID || e.staged(t).ID != s3.res.ID {
		t.Errorf("result %+v, staged %+v", s3.res, e.staged(t))
	}
	if ids := e.deployments(t); len(ids) != 2 || ids[0] != id1 || ids[1] != s3.res.ID {
		t.Errorf("deployments = %v, want %s and %s", ids, id1, s3.res.ID)
	}
	for _, p := range []string{e.r.Deployment(sr, s2.res.ID), e.r.Image(v2.ManifestDigest), e.r.BootFiles(s2.res.BootDigest)} {
		if exists(p) {
			t.Errorf("%s of the replaced deployment survived", p)
		}
	}
	if g := s3.res.GC; g == nil || len(g.Deployments) != 1 || g.Bytes <= 0 || g.Layers != 1 {
		t.Errorf("gc result = %+v", g)
	}
	if !strings.Contains(s3.stdout, "Garbage collection: removed 1 deployment, 1 image, 1 layer") {
		t.Errorf("stdout = %q", s3.stdout)
	}
	if read(t, e.reboot) != "bootc: Reboot required for image: "+v3.ManifestDigest+"\n" {
		t.Error("reboot-required not rewritten for the new image")
	}
}

func TestEtcConflictRefused(t *testing.T) {
	e := newEnv(t)
	id1 := bootV1(t, e, append(dt.OS("k1", "i1"), dt.F("etc/app.conf", "default\n")))
	if err := os.WriteFile(filepath.Join(e.r.Etc(sr, id1), "app.conf"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := dt.Fetch(t, e.r, "2", append(dt.OS("k2", "i2"), dt.D("etc/app.conf"), dt.F("etc/app.conf/x", "")))
	o := e.run(t, "--no-arm", "--image", v2.ManifestDigest)
	if o.code != 1 || !strings.Contains(o.stderr, "app.conf") || !strings.Contains(o.stderr, "cannot be merged") {
		t.Fatalf("exit %d, stderr %q", o.code, o.stderr)
	}
	if o.res != nil || exists(e.r.Staged()) || strings.Contains(read(t, e.reboot), v2.ManifestDigest) {
		t.Error("a refused stage left a result, staged record or reboot-required file")
	}
	if ids := e.deployments(t); len(ids) != 1 {
		t.Errorf("deployments = %v", ids)
	}
	ents, _ := os.ReadDir(e.r.Deploy(sr))
	if len(ents) != 2 {
		t.Errorf("deploy dir holds %d entries, want the booted tree and record", len(ents))
	}
	bootDirs, _ := os.ReadDir(filepath.Dir(e.r.BootFiles("sha256:0")))
	if len(bootDirs) != 1 {
		t.Errorf("/boot/bootc holds %d entries, want the booted kernel only", len(bootDirs))
	}
}

func TestInterruptedStageRecovers(t *testing.T) {
	e := newEnv(t)
	v1 := dt.Fetch(t, e.r, "1", dt.OS("kernel", "initrd"))
	prefix := strings.TrimPrefix(v1.ManifestDigest, "sha256:")[:12]
	half := filepath.Join(e.r.Deploy(sr), "."+prefix+".0.tmp", "usr", "lib")
	boot := e.r.BootFiles(dt.Sha256("kernel", "initrd"))
	halfBoot := filepath.Join(filepath.Dir(boot), "."+filepath.Base(boot)+".tmp")
	for _, d := range []string{half, halfBoot} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(halfBoot, "vmlinuz"), []byte("ker"), 0o644); err != nil {
		t.Fatal(err)
	}
	o := e.mustStage(t, "--image", v1.ManifestDigest)
	if !o.res.Staged || read(t, filepath.Join(boot, "vmlinuz")) != "kernel" {
		t.Errorf("result %+v", o.res)
	}
	if exists(filepath.Dir(filepath.Dir(half))) || exists(halfBoot) {
		t.Error("leftovers of the interrupted stage survived")
	}
}

func TestBadInvocations(t *testing.T) {
	e := newEnv(t)
	v1 := dt.Fetch(t, e.r, "1", dt.OS("k", "i"))
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no image", nil, 2, "missing flags: --image"},
		{"not a digest", []string{"--image", "latest"}, 1, "want a manifest digest"},
		{"not fetched", []string{"--image", dt.Sha256("other")}, 1, "has not been fetched"},
		{"bad stateroot", []string{"--image", v1.ManifestDigest, "--stateroot", "../x"}, 1, "--stateroot"},
		{"deployment karg", []string{"--image", v1.ManifestDigest, "--karg", "bootc.deployment=default/x"}, 1, "set by bootc itself"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := e.run(t, c.args...)
			if o.code != c.code || !strings.Contains(o.stderr, c.want) || strings.Count(o.stderr, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d and one line with %q", o.code, o.stderr, c.code, c.want)
			}
		})
	}
	if exists(e.r.Staged()) {
		t.Error("a failed invocation staged something")
	}

	empty := layout.New(filepath.Join(t.TempDir(), "none"), "")
	c := &CLI{}
	var out, errOut bytes.Buffer
	code := cli.Run(name, description, c, []string{"--sysroot", empty.Phys, "--image", v1.ManifestDigest}, &out, &errOut, c.runner(&out, &errOut))
	if code != 1 || !strings.Contains(errOut.String(), "holds no bootc state") {
		t.Errorf("unmanaged root: exit %d, %q", code, errOut.String())
	}
}

func TestLockBusy(t *testing.T) {
	e := newEnv(t)
	v1 := dt.Fetch(t, e.r, "1", dt.OS("k", "i"))
	l, err := lock.Acquire(context.Background(), e.r.Lock(), lock.Options{Operation: "upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	o := e.run(t, "--image", v1.ManifestDigest)
	if o.code != 1 || !strings.Contains(o.stderr, "upgrade") || exists(e.r.Staged()) {
		t.Errorf("exit %d, stderr %q", o.code, o.stderr)
	}
}

// boundImageFiles declares one bound image, as an image would.
func boundImageFiles() []dt.File {
	return []dt.File{
		dt.D("usr/share"), dt.D("usr/share/containers"), dt.D("usr/share/containers/systemd"),
		dt.F("usr/share/containers/systemd/app.image", "[Image]\nImage=registry.example/app:1\n"),
		dt.D("usr/lib/bootc/bound-images.d"),
		{Path: "usr/lib/bootc/bound-images.d/app.image", Link: "/usr/share/containers/systemd/app.image"},
	}
}

// fakeBoundImages puts a bootc-bound-images in the tool directory that records its arguments
// and whether it inherited the lock, and exits with code.
func fakeBoundImages(t *testing.T, code int) string {
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$* lock=${BOOTC_LOCK_FD:+inherited}\" >>" + log + "\nexit " + string(rune('0'+code)) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "bootc-bound-images"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BOOTC_LIBEXEC_DIR", dir)
	return log
}

func TestBoundImagesStoredBeforeStaging(t *testing.T) {
	e := newEnv(t)
	log := fakeBoundImages(t, 0)
	plain := dt.Fetch(t, e.r, "1", dt.OS("k1", "i1"))
	e.mustStage(t, "--image", plain.ManifestDigest)
	if exists(log) {
		t.Fatalf("an image declaring no bound images ran bootc-bound-images: %s", read(t, log))
	}
	bound := dt.Fetch(t, e.r, "2", append(dt.OS("k2", "i2"), boundImageFiles()...))
	o := e.mustStage(t, "--image", bound.ManifestDigest)
	want := "--sysroot " + e.r.Phys + " sync --deployment " + sr + "/" + o.res.ID + " lock=inherited\n"
	if got := read(t, log); got != want {
		t.Errorf("bootc-bound-images calls:\n got %q\nwant %q", got, want)
	}
}

func TestBoundImagesFailureStagesNothing(t *testing.T) {
	e := newEnv(t)
	fakeBoundImages(t, 1)
	bound := dt.Fetch(t, e.r, "1", append(dt.OS("k1", "i1"), boundImageFiles()...))
	o := e.run(t, "--no-arm", "--image", bound.ManifestDigest)
	if o.code == 0 {
		t.Fatalf("stage succeeded although the bound images could not be stored\n%s", o.stdout)
	}
	if !strings.Contains(o.stderr, "storing the bound images of deployment") {
		t.Errorf("stderr: %s", o.stderr)
	}
	if _, err := record.ReadStaged(e.r); err == nil {
		t.Error("a staged record was written")
	}
	if ids := e.deployments(t); len(ids) != 0 {
		t.Errorf("deployments left behind: %v", ids)
	}
}

// listBoundImage makes bootc's bound storage list an image, as podman records it, so that
// collecting it needs the tool.
func listBoundImage(t *testing.T, r layout.Root) {
	t.Helper()
	p := filepath.Join(r.BoundStorage(), "overlay-images", "images.json")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`[{"id":"0123456789ab","names":["localhost/app:1"]}]`), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBoundImagesCollectedAfterStage(t *testing.T) {
	e := newEnv(t)
	log := fakeBoundImages(t, 0)
	// An empty bound storage needs no collection.
	plain := dt.Fetch(t, e.r, "1", dt.OS("k1", "i1"))
	o := e.mustStage(t, "--image", plain.ManifestDigest)
	if exists(log) || !strings.Contains(o.stdout, "Bound images: nothing to remove.") {
		t.Fatalf("stdout %q; calls %s", o.stdout, read(t, log))
	}
	listBoundImage(t, e.r)
	bound := dt.Fetch(t, e.r, "2", append(dt.OS("k2", "i2"), boundImageFiles()...))
	o = e.mustStage(t, "--image", bound.ManifestDigest)
	want := "--sysroot " + e.r.Phys + " sync --deployment " + sr + "/" + o.res.ID + " lock=inherited\n" +
		"--sysroot " + e.r.Phys + " --cmdline " + e.cmdline + " gc lock=inherited\n"
	if got := read(t, log); got != want {
		t.Errorf("bootc-bound-images calls:\n got %q\nwant %q", got, want)
	}
	if o.res.BoundImagesError != "" || o.res.GCError != "" {
		t.Errorf("result %+v", o.res)
	}
}

func TestBoundImagesCollectionFailureIsAWarning(t *testing.T) {
	e := newEnv(t)
	fakeBoundImages(t, 1)
	listBoundImage(t, e.r)
	plain := dt.Fetch(t, e.r, "1", dt.OS("k1", "i1"))
	o := e.mustStage(t, "--image", plain.ManifestDigest)
	if !o.res.Staged || e.staged(t).ID != o.res.ID {
		t.Errorf("the stage did not succeed: %+v", o.res)
	}
	const msg = "collecting bound images: bootc-bound-images exited with status 1"
	if o.res.BoundImagesError != msg || o.res.GCError != "" || o.res.GC == nil {
		t.Errorf("result %+v", o.res)
	}
	if !strings.Contains(o.stderr, "warning: "+msg) {
		t.Errorf("stderr %q", o.stderr)
	}
}

// TestBoundImagesRemovedAfterStage runs the real bootc-bound-images on a storage podman filled:
// after a stage, an image no kept deployment declares is gone and the booted one's stays.
func TestBoundImagesRemovedAfterStage(t *testing.T) {
	sysroottest.RequirePodman(t)
	tools, err := sysroottest.Tools(t.TempDir(), "bootc-bound-images")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	// The booted deployment declares registry.example/app:1; storing it is not under test.
	fakeBoundImages(t, 0)
	bootV1(t, e, append(dt.OS("k1", "i1"), boundImageFiles()...))
	sysroottest.StoreImage(t, e.r.BoundStorage(), "registry.example/app:1")
	sysroottest.StoreImage(t, e.r.BoundStorage(), "localhost/nobody:1")

	t.Setenv("BOOTC_LIBEXEC_DIR", tools)
	v2 := dt.Fetch(t, e.r, "2", dt.OS("k2", "i2"))
	o := e.mustStage(t, "--image", v2.ManifestDigest)
	if got := sysroottest.StoredImages(t, e.r.BoundStorage()); strings.Join(got, " ") != "registry.example/app:1" {
		t.Errorf("bound images after the stage: %v, want only the booted deployment's\nstdout: %s\nstderr: %s", got, o.stdout, o.stderr)
	}
	if !strings.Contains(o.stdout, "Removed bound image") || !strings.Contains(o.stdout, "localhost/nobody:1") || o.res.BoundImagesError != "" {
		t.Errorf("stdout %q, result %+v", o.stdout, o.res)
	}
}

// An image whose deployment failed to boot here is not staged again: the outcome says so, with
// success, so that the update timer's unit does not fail; --allow-failed stages it.
func TestFailedImageRefused(t *testing.T) {
	e := newEnv(t)
	id1 := bootV1(t, e, dt.OS("k1", "i1"))
	v3 := dt.Fetch(t, e.r, "3", dt.OS("k3", "i3"))
	staged := e.mustStage(t, "--image", v3.ManifestDigest)
	os.Remove(e.reboot)
	// Fetched after that stage, whose collection removes images no deployment uses.
	v2 := dt.Fetch(t, e.r, "2", dt.OS("k2", "i2"))
	failedAt := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	const check = "/etc/greenboot/check/required.d/10-app.sh"
	if err := record.AddFailedImage(e.r, sr, record.FailedImage{ManifestDigest: v2.ManifestDigest, Image: dt.Ref,
		ID: "gone.0", Time: failedAt, Reason: "required health check failed: exit code '1'", Check: check,
		LastLines: []string{"app not ready"}, Tries: 2}); err != nil {
		t.Fatal(err)
	}

	o := e.mustStage(t, "--image", v2.ManifestDigest)
	if o.res.Staged || o.res.Reason != "failed-before" || o.res.Failed == nil || o.res.Failed.ID != "gone.0" || o.res.Failed.Check != check {
		t.Errorf("result %+v", o.res)
	}
	line := "Not staging " + v2.ManifestDigest + ": it failed to boot here at 2026-03-01T10:00:00Z: required health check failed: exit code '1' (check " + check + "). Use --allow-failed to stage it all the same.\n"
	if o.stdout != line {
		t.Errorf("stdout:\n got %q\nwant %q", o.stdout, line)
	}
	// Nothing changed: the deployment staged before stays staged.
	if s := e.staged(t); s.ID != staged.res.ID {
		t.Errorf("staged %s, want %s still", s.ID, staged.res.ID)
	}
	if ids := e.deployments(t); strings.Join(ids, " ") != id1+" "+staged.res.ID {
		t.Errorf("deployments %v", ids)
	}
	if exists(e.reboot) || strings.Contains(o.log, "Staged deployment") {
		t.Error("a refused image was announced")
	}

	// Another stateroot's failure does not count here.
	if err := record.AddFailedImage(e.r, "other", record.FailedImage{ManifestDigest: v3.ManifestDigest, Time: failedAt, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if o := e.mustStage(t, "--image", v3.ManifestDigest); o.res.Reason != "already-staged" {
		t.Errorf("image failed in another stateroot: %+v", o.res)
	}

	o = e.mustStage(t, "--image", v2.ManifestDigest, "--allow-failed")
	if !o.res.Staged || o.res.Failed == nil || o.res.Replaced != staged.res.ID || e.staged(t).ID != o.res.ID {
		t.Errorf("with --allow-failed: result %+v", o.res)
	}
	if !strings.HasPrefix(o.stdout, "Staging "+v2.ManifestDigest+" although it failed to boot here at 2026-03-01T10:00:00Z: ") ||
		!strings.Contains(o.stdout, "Queued for next boot: ") {
		t.Errorf("stdout %q", o.stdout)
	}
}
