package cleanup_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/cleanup"
	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/journal"
	"gobootc.dev/lib/lock"
	"gobootc.dev/lib/sysroottest"
)

// fakeTool puts a bootc-bound-images in the tool directory that records its arguments and
// whether it shares the lock, and exits with code.
func fakeTool(t *testing.T, code string) string {
	t.Helper()
	dir := t.TempDir()
	log := filepath.Join(dir, "calls")
	script := "#!/bin/sh\necho \"$* run=$BOOTC_RUN_DIR lock=${" + lock.EnvFD + ":+inherited}\" >>" + log + "\necho tool output\nexit " + code + "\n"
	if err := os.WriteFile(filepath.Join(dir, cleanup.BoundImagesTool), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BOOTC_LIBEXEC_DIR", dir)
	return log
}

// storeImage makes bootc's bound storage list one image, as podman records it.
func storeImage(t *testing.T, s *sysroottest.Sysroot) {
	t.Helper()
	sysroottest.Files(t, s.Root.BoundStorage(), map[string]string{
		"overlay-images/images.json": `[{"id":"0123456789ab","names":["localhost/app:1"]}]`,
	})
}

func TestRun(t *testing.T) {
	// Where the journal entry goes when this host has no journal.
	var journalFallback bytes.Buffer
	defer journal.SetFallback(journal.SetFallback(&journalFallback))
	cases := []struct {
		name     string
		images   bool   // the bound storage holds an image
		toolExit string // "" for no tool installed
		badEntry bool   // a boot entry the deployment collection cannot read
		wantRan  bool
		wantGC   string // error substring, "" for success
		wantBI   string
	}{
		{name: "empty storage", toolExit: "0"},
		{name: "empty storage, no tool", toolExit: ""},
		{name: "images", images: true, toolExit: "0", wantRan: true},
		{name: "tool fails", images: true, toolExit: "3", wantRan: true, wantBI: "bootc-bound-images exited with status 3"},
		{name: "tool missing", images: true, toolExit: "", wantBI: "step tool bootc-bound-images not found"},
		{name: "deployment collection fails", images: true, toolExit: "0", badEntry: true, wantRan: true, wantGC: "boot entry"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := sysroottest.New(t)
			s.Deploy("aaaa.0", "0")
			s.Deploy("bbbb.0", "1")
			s.Deploy("cccc.0", "2")
			s.Entries("cccc.0", "bbbb.0")
			s.Boot("cccc.0")
			if c.badEntry {
				sysroottest.Files(t, s.Root.Entries(), map[string]string{
					"bootc-default-9.conf": "title broken\nversion 9\nlinux /bootc/x/vmlinuz\noptions bootc.deployment=nostateroot\n",
				})
			}
			if c.images {
				storeImage(t, s)
			}
			log := filepath.Join(t.TempDir(), "calls")
			if c.toolExit != "" {
				log = fakeTool(t, c.toolExit)
			} else {
				// Set, the directory is the only place searched: a copy installed on this host
				// by `make install` is not found.
				t.Setenv("BOOTC_LIBEXEC_DIR", t.TempDir())
			}
			l, err := lock.Acquire(context.Background(), s.Root.Lock(), lock.Options{Operation: "stage"})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Release()
			var out, errOut bytes.Buffer
			journalFallback.Reset()
			res := cleanup.Run(context.Background(), cleanup.Options{Root: s.Root, Cmdline: "/nonexistent", Lock: l, Out: &out, ErrOut: &errOut})

			if res.BoundImagesRan != c.wantRan {
				t.Errorf("tool ran: %v, want %v", res.BoundImagesRan, c.wantRan)
			}
			checkErr(t, "deployment collection", res.GCErr, c.wantGC)
			checkErr(t, "bound image collection", res.BoundImagesErr, c.wantBI)
			if (c.wantGC != "" || c.wantBI != "") != (res.Err() != nil) || res.Err() != nil && strings.Contains(res.Err().Error(), "\n") {
				t.Errorf("Err() = %v", res.Err())
			}
			calls, _ := os.ReadFile(log)
			want := ""
			if c.wantRan {
				want = "--sysroot " + s.Root.Phys + " --cmdline /nonexistent gc run=" + s.Root.Run + " lock=inherited\n"
			}
			if string(calls) != want {
				t.Errorf("tool calls %q, want %q", calls, want)
			}
			if c.wantGC == "" {
				// The deployment the entries dropped is gone, the others are kept.
				if res.GC == nil || strings.Join(res.GC.Deployments, " ") != "default/aaaa.0" {
					t.Errorf("gc result %+v", res.GC)
				}
				if _, err := os.Stat(s.Root.DeploymentRecord("default", "aaaa.0")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("dropped deployment's record: %v", err)
				}
				if !strings.Contains(out.String(), "Garbage collection: removed 1 deployment") {
					t.Errorf("stdout lacks the summary:\n%s", out.String())
				}
				// Both end up in the journal of a service: the summary must be in one only.
				if n := strings.Count(out.String()+journalFallback.String(), "Garbage collection:"); n != 1 {
					t.Errorf("the summary was printed %d times:\nstdout:\n%sjournal fallback:\n%s", n, out.String(), journalFallback.String())
				}
			} else if _, err := os.Stat(s.Root.DeploymentRecord("default", "aaaa.0")); err != nil {
				t.Errorf("a failed decision removed something: %v", err)
			}
			switch {
			case !c.images && !strings.Contains(out.String(), "Bound images: nothing to remove."):
				t.Errorf("stdout lacks the bound images line:\n%s", out.String())
			case c.wantRan && !strings.Contains(out.String(), "tool output"):
				t.Errorf("the tool's output did not reach stdout:\n%s", out.String())
			}
		})
	}
}

func checkErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: error %v, want one containing %q", what, err, want)
	}
	var ee *cli.ExitError
	if strings.Contains(want, "exited") && (!errors.As(err, &ee) || !ee.Reported) {
		t.Errorf("%s: a failed tool's status is not passed on: %#v", what, err)
	}
}
