// Package lifecycle drives the sample image through its whole life in a virtual machine:
// installed to a disk from inside its own container, booted, upgraded, rebooted, rolled back,
// and cut off during finalize. The VM test and `make demo` run the same steps; only the
// narration differs.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Where the images live: built locally, published on the host's loopback registry, which the
// guest reaches through QEMU's user network at GuestRegistry.
const (
	SampleImage   = "localhost/bootc-sample"
	RegistryAddr  = registryHost + ":" + registryPort
	GuestRegistry = "10.0.2.100:5000"
	Repository    = "bootc-sample"
	// GuestFwd is the only way out of the guest's restricted network: each connection to the
	// registry address starts a relay to the host's registry. A chardev target
	// ("…-tcp:127.0.0.1:5000") would not do: QEMU opens it once per machine, so it carries one
	// connection, and the second HTTP request of the guest hangs.
	GuestFwd     = "tcp:" + GuestRegistry + "-cmd:busybox nc " + registryHost + " " + registryPort
	registryHost = "127.0.0.1"
	registryPort = "5000"
)

// TargetImage is the image an installed system follows for updates.
const TargetImage = GuestRegistry + "/" + Repository + ":latest"

// SampleTags are the sample images images/build.sh makes; each has its version in
// /usr/share/bootc-sample/version and as its version label.
var SampleTags = []string{"v1", "v2", "v3", "v4", "v5", "v6", "v7"}

// The application images v3 binds (v4 and v5 bind app-a only), as the guest names them:
// GuestRegistry/bound/<app>:1, built as localhost/bootc-bound-app:a and :b.
var BoundApps = []string{"app-a", "app-b"}

const (
	boundAppImage   = "localhost/bootc-bound-app"
	boundRepository = "bound"
)

// BoundRef is how the guest names a bound application image.
func BoundRef(app string) string { return GuestRegistry + "/" + boundRepository + "/" + app + ":1" }

// ErrPortTaken means something already listens on the registry port; the guest can reach the
// registry at no other address, so the run cannot go on.
var ErrPortTaken = errors.New("the registry port is taken")

// Narrator is told what happens: the test logs it, the demo prints it for people.
type Narrator interface {
	// Step starts a step: a short title and what it does.
	Step(title, about string)
	// Show presents output worth reading: a status, a file, a command line.
	Show(label, text string)
	// Logf is detail: harness messages, timings.
	Logf(format string, args ...any)
	// Errorf reports a check that failed; the run goes on where it can.
	Errorf(format string, args ...any)
}

// ConsoleWatcher is a Narrator that follows the machine's console between the steps' output
// (the demo shows its last line while a boot is awaited); each boot's console log is named to
// it as the boot starts.
type ConsoleWatcher interface {
	Console(path string)
}

// Env is what every run shares: the images and the registry they are published on.
type Env struct {
	repo        string
	registryDir string
	n           Narrator
	images      Images
	// Build is how long images/build.sh took (cached builds take seconds).
	Build time.Duration
}

// Images says which sample images Prepare builds and publishes: an images/build.sh target.
type Images string

const (
	// LifecycleImages are v1 and v2, all that Run needs without BadUpdates.
	LifecycleImages Images = "v2"
	// AllImages add v3 to v5 and the application images they bind, which RunUpdates needs,
	// and the bad updates v6 and v7 of Run's BadUpdates.
	AllImages Images = "all"
)

// Prepare builds every sample image (images/build.sh all, cached), starts a registry on
// 127.0.0.1:5000 with its storage under work, and publishes them there, v1 as :latest, with the
// application images v3 and v4 bind.
func Prepare(ctx context.Context, repo, work string, n Narrator) (*Env, error) {
	return PrepareImages(ctx, repo, work, AllImages, n)
}

// PrepareImages is Prepare for the chosen images only.
func PrepareImages(ctx context.Context, repo, work string, images Images, n Narrator) (*Env, error) {
	e := &Env{repo: repo, registryDir: filepath.Join(work, "registry"), n: n, images: images}
	tags, apps := SampleTags, BoundApps
	about := "images/build.sh builds localhost/bootc-sample:v1 (Debian trixie, kernel, podman, the bootc tools and " +
		"what install needs) and v2 (v1 with a changed /etc default, a new file in /usr and one more " +
		"kernel argument in kargs.d)"
	switch images {
	case LifecycleImages:
		tags, apps = SampleTags[:2], nil
		about += "."
	case AllImages:
		about += ", v3 to v5 (v2 binding application images), those application images, and two bad " +
			"updates: v6 (a required health check fails) and v7 (the kernel panics)."
	default:
		return nil, fmt.Errorf("lifecycle: images %q: want %q or %q", images, LifecycleImages, AllImages)
	}
	n.Step("Build the sample images", about+" Unchanged inputs are not rebuilt; the first run "+
		"builds the Debian base with mmdebstrap, which takes a few minutes.")
	start := time.Now()
	out, err := command(ctx, filepath.Join(repo, "images/build.sh"), string(images))
	e.Build = time.Since(start)
	if err != nil {
		return nil, err
	}
	n.Logf("%s", out)

	n.Step("Publish the images on a registry",
		"A registry on "+RegistryAddr+" serves the images; the guest sees it as "+GuestRegistry+
			" and nothing else of the network.")
	if l, err := net.Listen("tcp", RegistryAddr); err != nil {
		return nil, fmt.Errorf("%w: %s is in use (%v); stop what listens there, the guest can reach the registry only at that address", ErrPortTaken, RegistryAddr, err)
	} else {
		l.Close()
	}
	if err := os.MkdirAll(e.registryDir, 0o755); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("busybox"); err != nil {
		return nil, errors.New("the guest's network relay needs busybox (Debian package busybox-static; scripts/deps.sh installs it)")
	}
	if _, err := command(ctx, filepath.Join(repo, "scripts/registry.sh"), "start", registryPort, e.registryDir); err != nil {
		return nil, err
	}
	pushes := map[string]string{}
	for _, tag := range tags {
		pushes[SampleImage+":"+tag] = Repository + ":" + tag
	}
	for _, app := range apps {
		pushes[boundAppImage+":"+strings.TrimPrefix(app, "app-")] = boundRepository + "/" + app + ":1"
	}
	for src, dst := range pushes {
		t0 := time.Now()
		if err := skopeo(ctx, "containers-storage:"+src, "docker://"+RegistryAddr+"/"+dst); err != nil {
			e.Close()
			return nil, err
		}
		n.Logf("pushed %s to %s/%s in %s", src, RegistryAddr, dst, time.Since(t0).Round(time.Millisecond))
	}
	if err := e.Publish(ctx, "v1"); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Publish makes :tag the registry's :latest, the tag installed systems follow.
func (e *Env) Publish(ctx context.Context, tag string) error {
	return skopeo(ctx, "docker://"+RegistryAddr+"/"+Repository+":"+tag, "docker://"+RegistryAddr+"/"+Repository+":latest")
}

// Close stops the registry.
func (e *Env) Close() error {
	_, err := command(context.Background(), filepath.Join(e.repo, "scripts/registry.sh"), "stop", registryPort, e.registryDir)
	return err
}

func skopeo(ctx context.Context, src, dst string) error {
	args := []string{"copy", "--quiet", "--dest-tls-verify=false"}
	if strings.HasPrefix(src, "docker://") {
		args = append(args, "--src-tls-verify=false")
	}
	cmd := exec.CommandContext(ctx, "skopeo", append(args, src, dst)...)
	// The host's own registry credentials must not leak into the run.
	cmd.Env = append(os.Environ(), "REGISTRY_AUTH_FILE=/nonexistent/bootc-lifecycle-auth.json")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("skopeo %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// command runs a host command and returns its combined output; the error carries the output.
func command(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}
