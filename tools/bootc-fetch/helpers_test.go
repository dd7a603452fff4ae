package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/spectest"
	"gobootc.dev/lib/store"
	"gobootc.dev/lib/sysroottest"
)

// env is a physical root plus a registry behind a counting proxy.
type env struct {
	t     *testing.T
	sys   *sysroottest.Sysroot
	reg   *fetchtest.Registry
	proxy *fetchtest.Proxy
	conf  string // registries.conf marking both as plain HTTP
	oci   string // OCI layout directory images are built into
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, sys: sysroottest.New(t), oci: filepath.Join(t.TempDir(), "oci")}
	e.reg = fetchtest.StartRegistry(t)
	e.proxy = fetchtest.StartProxy(t, e.reg.Host)
	e.conf = filepath.Join(t.TempDir(), "registries.conf")
	if err := fetchtest.WriteRegistriesConf(e.conf, e.reg.Host, e.proxy.Host); err != nil {
		t.Fatal(err)
	}
	return e
}

// push builds img into the OCI layout under name's tag and pushes it as name.
func (e *env) push(name string, img fetchtest.Image) fetchtest.Built {
	e.t.Helper()
	b, err := fetchtest.WriteLayout(e.oci, name, img)
	if err != nil {
		e.t.Fatal(err)
	}
	e.reg.Push("oci:"+e.oci+":"+name, name)
	return b
}

// cli returns a command line for this root with progress collected.
func (e *env) cli(image string) (*CLI, *bytes.Buffer) {
	var prog bytes.Buffer
	return &CLI{
		Image: image, Transport: "registry", RegistriesConf: e.conf, Cmdline: "/dev/null",
		LockWait: time.Second, Progress: &prog, AuthSearch: []string{},
	}, &prog
}

func (e *env) root(c *CLI) *CLI {
	c.Sysroot, c.RunDir = e.sys.Root.Phys, e.sys.Root.Run
	return c
}

// run runs the tool in process.
func run(t *testing.T, c *CLI) (stdout, stderr string, err error) {
	t.Helper()
	var o, s bytes.Buffer
	err = c.Run(context.Background(), &o, &s)
	return o.String(), s.String(), err
}

// checkProgress validates every event and returns them decoded.
func checkProgress(t *testing.T, raw []byte) []map[string]any {
	t.Helper()
	var evs []map[string]any
	for i, line := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		if err := spectest.ValidateProgress(line); err != nil {
			t.Fatalf("progress event %d %s: %v", i, line, err)
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, m)
	}
	if len(evs) < 2 || evs[0]["type"] != "Start" {
		t.Fatalf("progress does not start with a Start event: %s", raw)
	}
	return evs
}

func readFetched(t *testing.T, e *env, d digest.Digest) *record.FetchedImage {
	t.Helper()
	fi, err := record.ReadFetchedImage(e.sys.Root, d.String())
	if err != nil {
		t.Fatal(err)
	}
	return fi
}

func openStore(t *testing.T, e *env) *store.Store {
	t.Helper()
	return openStoreAt(t, e.sys.Root.Store())
}

func openStoreAt(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// bootFrom makes the root look booted from deployment id of the image ref at digest d.
func (e *env) bootFrom(id, ref string, b fetchtest.Built, sig *host.ImageSignature) {
	e.t.Helper()
	var layers []string
	for _, l := range b.DiffIDs {
		layers = append(layers, l.String())
	}
	e.sys.Deploy(id, "1", func(d *record.Deployment) {
		d.Image.Ref = host.ImageReference{Image: ref, Transport: "registry", Signature: sig}
		d.Image.ManifestDigest = b.ManifestDigest.String()
		d.Image.Layers = layers
	})
	e.sys.Entries(id)
	e.sys.Boot(id)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds the tool with its build tags once ($BOOTC_TEST_BIN if it already has it).
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if d := os.Getenv("BOOTC_TEST_BIN"); d != "" {
			if _, err := os.Stat(filepath.Join(d, "bootc-fetch")); err == nil {
				binPath = filepath.Join(d, "bootc-fetch")
				return
			}
		}
		tags, err := os.ReadFile("TAGS")
		if err != nil {
			binErr = err
			return
		}
		dir, err := os.MkdirTemp("", "bootc-fetch-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "bootc-fetch")
		cmd := exec.Command("go", "build", "-tags", strings.Join(strings.Fields(string(tags)), ","), "-o", binPath, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = err
			binPath = string(out)
		}
	})
	if binErr != nil {
		t.Fatalf("building bootc-fetch: %v\n%s", binErr, binPath)
	}
	return binPath
}
