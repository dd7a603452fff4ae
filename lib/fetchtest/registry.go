package fetchtest

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"gobootc.dev/lib/envtest"
)

// Require ends the test as envtest.Missing does unless every named program is on $PATH.
func Require(t testing.TB, programs ...string) {
	t.Helper()
	envtest.NeedTool(t, programs...)
}

// RequireRoot ends the test as envtest.Missing does unless it runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	envtest.NeedRoot(t)
}

// Registry is a docker-registry serving plain HTTP on 127.0.0.1.
type Registry struct {
	t       testing.TB
	Host    string // 127.0.0.1:PORT
	Dir     string
	port    int
	script  string
	stopped bool
}

// scriptsDir finds the checkout's scripts/ directory from the working directory upwards.
func scriptsDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		s := filepath.Join(dir, "scripts", "registry.sh")
		if _, err := os.Stat(s); err == nil {
			return filepath.Dir(s), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("scripts/registry.sh not found above the working directory")
		}
		dir = parent
	}
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// StartRegistry runs a registry on a free port for the rest of the test. It ends the test as
// envtest.Missing does when docker-registry, curl or skopeo are missing.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	Require(t, "docker-registry", "curl", "skopeo")
	scripts, err := scriptsDir()
	if err != nil {
		envtest.Missing(t, "the checkout's scripts: %v", err)
	}
	r := &Registry{t: t, Dir: t.TempDir(), script: filepath.Join(scripts, "registry.sh")}
	for attempt := 0; ; attempt++ {
		if r.port, err = FreePort(); err != nil {
			t.Fatal(err)
		}
		r.Host = fmt.Sprintf("127.0.0.1:%d", r.port)
		if err = r.run("start"); err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("starting registry: %v", err)
		}
	}
	t.Cleanup(func() {
		if err := r.run("stop"); err != nil {
			t.Errorf("stopping registry: %v", err)
		}
	})
	return r
}

func (r *Registry) run(cmd string) error {
	out, err := exec.Command(r.script, cmd, fmt.Sprint(r.port), r.Dir).CombinedOutput()
	if err != nil {
		return fmt.Errorf("registry.sh %s: %v: %s", cmd, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Stop stops the registry (it stays stopped until Start).
func (r *Registry) Stop() {
	r.t.Helper()
	if err := r.run("stop"); err != nil {
		r.t.Fatal(err)
	}
}

// Start restarts a stopped registry on the same port and storage.
func (r *Registry) Start() {
	r.t.Helper()
	if err := r.run("start"); err != nil {
		r.t.Fatal(err)
	}
}

// Ref returns the registry reference of name (repository:tag) on this registry.
func (r *Registry) Ref(name string) string { return r.Host + "/" + name }

// Push copies a containers/image source (e.g. "oci:/dir:tag") to name on the registry with
// skopeo; extra arguments go before the source (e.g. "--sign-by", key).
func (r *Registry) Push(src, name string, extra ...string) {
	r.t.Helper()
	if err := Copy(src, "docker://"+r.Ref(name), append([]string{"--dest-tls-verify=false"}, extra...)...); err != nil {
		r.t.Fatal(err)
	}
}

// Copy runs skopeo copy (with --all, so indexes keep every instance).
func Copy(src, dest string, extra ...string) error {
	args := append([]string{"copy", "--all", "--preserve-digests", "--quiet"}, extra...)
	args = append(args, src, dest)
	cmd := exec.Command("skopeo", args...)
	// A user's or the host's podman auth must not leak into tests.
	cmd.Env = append(os.Environ(), "REGISTRY_AUTH_FILE=/nonexistent/bootc-test-auth.json")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("skopeo %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// WriteRegistriesConf writes a registries.conf that marks the given hosts as plain-HTTP
// registries and has no unqualified-search registries.
func WriteRegistriesConf(path string, hosts ...string) error {
	var b strings.Builder
	b.WriteString("unqualified-search-registries = []\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "\n[[registry]]\nlocation = %q\ninsecure = true\n", h)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// Proxy is a loopback reverse proxy in front of a registry that counts what it serves and can
// cut a response in the middle.
type Proxy struct {
	Host string

	target    string
	blobBytes atomic.Int64
	mu        sync.Mutex
	requests  []string
	agents    map[string]bool
	cutAfter  int64 // next blob response is cut after this many bytes; <0: never
	stall     chan struct{}
	stalled   chan struct{}
	denied    bool
}

// StartProxy serves a proxy to target (host:port) on a free loopback port for the rest of the test.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Host: l.Addr().String(), target: target, cutAfter: -1}
	srv := &http.Server{Handler: p}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p
}

// Ref returns the reference of name through the proxy.
func (p *Proxy) Ref(name string) string { return p.Host + "/" + name }

// BlobBytes is the number of blob body bytes served so far.
func (p *Proxy) BlobBytes() int64 { return p.blobBytes.Load() }

// Requests returns "METHOD PATH" of every request so far.
func (p *Proxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// UserAgents returns the User-Agent headers of the requests so far, each once, sorted.
func (p *Proxy) UserAgents() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Sorted(maps.Keys(p.agents))
}

// BlobGets counts GET requests for blobs so far.
func (p *Proxy) BlobGets() int {
	n := 0
	for _, r := range p.Requests() {
		if strings.HasPrefix(r, "GET ") && strings.Contains(r, "/blobs/") {
			n++
		}
	}
	return n
}

// CutNextBlob makes the next blob response larger than n bytes stop after n bytes by dropping
// the connection.
func (p *Proxy) CutNextBlob(n int64) {
	p.mu.Lock()
	p.cutAfter = n
	p.mu.Unlock()
}

// StallNextBlob makes the next blob response larger than n bytes stop after n bytes and hang
// until release is called; the connection is then dropped. The returned channel is closed once
// the response has stalled.
func (p *Proxy) StallNextBlob(n int64) (stalled <-chan struct{}, release func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutAfter = n
	p.stall, p.stalled = make(chan struct{}), make(chan struct{})
	st := p.stall
	var once sync.Once
	return p.stalled, func() { once.Do(func() { close(st) }) }
}

// Deny makes the proxy answer every request from now on as a registry does to a client without
// credentials: 401 with a Basic challenge and the registry's UNAUTHORIZED error.
func (p *Proxy) Deny() {
	p.mu.Lock()
	p.denied = true
	p.mu.Unlock()
}

// ServeHTTP forwards one request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p.mu.Lock()
	if p.denied {
		p.mu.Unlock()
		w.Header().Set("WWW-Authenticate", `Basic realm="fetchtest"`)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}`)
		return
	}
	p.requests = append(p.requests, req.Method+" "+req.URL.Path)
	if p.agents == nil {
		p.agents = map[string]bool{}
	}
	p.agents[req.UserAgent()] = true
	blob := req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/")
	cut := int64(-1)
	var stall, stalled chan struct{}
	p.mu.Unlock()
	out := req.Clone(req.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host, out.Host = "http", p.target, p.target
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if blob && resp.StatusCode == http.StatusOK {
		p.mu.Lock()
		if p.cutAfter >= 0 && resp.ContentLength > p.cutAfter {
			cut, p.cutAfter = p.cutAfter, -1
			stall, stalled, p.stall, p.stalled = p.stall, p.stalled, nil, nil
		}
		p.mu.Unlock()
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	var body io.Reader = resp.Body
	if cut >= 0 {
		body = io.LimitReader(resp.Body, cut)
	}
	n, _ := io.Copy(w, body)
	if blob {
		p.blobBytes.Add(n)
	}
	if cut >= 0 {
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		if stall != nil {
			close(stalled)
			select {
			case <-stall:
			case <-req.Context().Done():
			}
		}
		// Aborting the handler drops the connection with the body incomplete.
		panic(http.ErrAbortHandler)
	}
}

// RandomBytes returns n bytes that do not compress, from a fixed seed.
func RandomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}
