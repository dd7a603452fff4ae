package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"

	"gobootc.dev/lib/envtest"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/spectest"
	"gobootc.dev/lib/sysroottest"
)

var bin string

func TestMain(m *testing.M) {
	sysroottest.MainWithTools(m, &bin, "bootc", "bootc-status", "bootc-install", "bootc-fetch", "bootc-stage", "bootc-finalize", "bootc-bound-images")
}

type result struct {
	code           int
	stdout, stderr string
}

// bootc runs the front with a clean environment plus env; uid >= 0 runs it as that user.
func bootc(t *testing.T, uid int, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "bootc"), args...)
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "BOOTC_LIBEXEC_DIR=" + bin}, env...)
	cmd.Dir = "/"
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errOut.String()}
}

const nobody = 65534

// needRoot: the tests switch users to check the refusals of a non-root caller.
func needRoot(t *testing.T) {
	t.Helper()
	envtest.NeedRoot(t)
}

// oneLineError checks the error contract: non-zero exit, one plain line on stderr.
func oneLineError(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("exit status 0, want failure (stdout %q)", r.stdout)
	}
	if strings.Count(r.stderr, "\n") != 1 || strings.ContainsRune(r.stderr, 0x1b) {
		t.Errorf("stderr is not one plain line: %q", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q lacks %q", r.stderr, want)
	}
}

func TestHelpUnprivileged(t *testing.T) {
	needRoot(t)
	r := bootc(t, nobody, nil, "--help")
	if r.code != 0 {
		t.Fatalf("bootc --help as nobody: exit %d: %s", r.code, r.stderr)
	}
	for _, verb := range []string{"upgrade", "switch", "rollback", "edit", "status", "usr-overlay", "install", "container", "image"} {
		if !strings.Contains(r.stdout, verb) {
			t.Errorf("help lacks %q:\n%s", verb, r.stdout)
		}
	}
	// Subcommand help passes through to the step tool.
	r = bootc(t, nobody, nil, "status", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--format-version") {
		t.Errorf("bootc status --help: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = bootc(t, nobody, nil, "upgrade", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--check") {
		t.Errorf("bootc upgrade --help: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestMutatingVerbsRefuse(t *testing.T) {
	needRoot(t)
	verbs := [][]string{{"upgrade"}, {"update", "--check"}, {"switch", "quay.io/a/b:1"}, {"edit", "-f", "/dev/null"}}
	for _, args := range verbs {
		t.Run(args[0], func(t *testing.T) {
			host := []string{"BOOTC_SKIP_CONTAINER_CHECK=1"}
			oneLineError(t, bootc(t, nobody, host, args...), "must be run as root")
			oneLineError(t, bootc(t, 0, []string{"container=podman"}, args...), "detected a container")
			oneLineError(t, bootc(t, 0, host, args...), "not deployed via bootc")
		})
	}
	oneLineError(t, bootc(t, nobody, nil, "install", "to-disk", "/dev/null"), "must be run as root")
	oneLineError(t, bootc(t, -1, nil, "image", "copy-to-storage"), "bootc image copy-to-storage: error: not supported in this build")
	oneLineError(t, bootc(t, nobody, []string{"BOOTC_SKIP_CONTAINER_CHECK=1"}, "rollback"), "must be run as root")
	oneLineError(t, bootc(t, 0, []string{"container=podman"}, "rollback"), "detected a container")
	oneLineError(t, bootc(t, 0, []string{"BOOTC_SKIP_CONTAINER_CHECK=1", "BOOTC_SYSROOT=" + t.TempDir()}, "rollback"), "not deployed via bootc")
	// Install is meant to run inside a container: only root is required.
	oneLineError(t, bootc(t, 0, []string{"container=podman"}, "install", "to-disk", "/dev/null"), "--source-imgref must be defined when not running in a podman container")
}

func TestStatusNotDeployed(t *testing.T) {
	env := []string{"BOOTC_SYSROOT=" + t.TempDir(), "BOOTC_RUN_DIR=" + t.TempDir()}
	r := bootc(t, -1, env, "status", "--format=json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if err := spectest.ValidateHost([]byte(r.stdout)); err != nil {
		t.Fatalf("invalid status: %v\n%s", err, r.stdout)
	}
	var h host.Host
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || h.Status.Booted != nil {
		t.Errorf("booted = %+v (err %v)", h.Status.Booted, err)
	}
	if r := bootc(t, -1, env, "status", "--format=humanreadable"); r.stdout != "System is not deployed via bootc.\n" {
		t.Errorf("human output %q", r.stdout)
	}
	// Not on a terminal, the default is YAML.
	if r := bootc(t, -1, env, "status"); !strings.HasPrefix(r.stdout, "apiVersion: org.containers.bootc/v1\n") {
		t.Errorf("default output %q", r.stdout)
	}
}

// TestStatusThisHost runs status against the real default paths of this machine.
func TestStatusThisHost(t *testing.T) {
	r := bootc(t, -1, nil, "status", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if err := spectest.ValidateHost([]byte(r.stdout)); err != nil {
		t.Fatalf("invalid status: %v\n%s", err, r.stdout)
	}
}

func TestStatusFormatsAgreeConcurrently(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Deploy("bbbb.0", "2")
	s.Deploy("cccc.0", "3")
	s.Entries("bbbb.0", "aaaa.0")
	s.Boot("bbbb.0")
	s.Stage("cccc.0", false)
	env := []string{"BOOTC_SYSROOT=" + s.Root.Phys, "BOOTC_RUN_DIR=" + s.Root.Run}

	js := bootc(t, -1, env, "status", "--format=json")
	ym := bootc(t, -1, env, "status", "--format=yaml")
	hr := bootc(t, -1, env, "status", "--format=humanreadable")
	if js.code+ym.code+hr.code != 0 {
		t.Fatalf("exit codes %d %d %d: %s%s%s", js.code, ym.code, hr.code, js.stderr, ym.stderr, hr.stderr)
	}
	if err := spectest.ValidateHost([]byte(js.stdout)); err != nil {
		t.Fatalf("invalid status: %v", err)
	}
	fromYAML, err := host.Parse([]byte(ym.stdout))
	if err != nil {
		t.Fatal(err)
	}
	again, _ := fromYAML.MarshalCanonicalJSON()
	if strings.TrimSpace(js.stdout) != string(again) {
		t.Errorf("JSON and YAML differ:\n%s\n%s", js.stdout, again)
	}
	for _, want := range []string{"  Staged image: ", "● Booted image: ", "  Rollback image: "} {
		if !strings.Contains(hr.stdout, want) {
			t.Errorf("human output lacks %q:\n%s", want, hr.stdout)
		}
	}

	// Ten readers at once all get the same valid document.
	var wg sync.WaitGroup
	outs := make([]result, 10)
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[i] = bootc(t, -1, env, "status", "--format=json")
		}()
	}
	wg.Wait()
	for i, r := range outs {
		if r.code != 0 || r.stdout != js.stdout {
			t.Errorf("reader %d: exit %d, output differs: %s%s", i, r.code, r.stdout, r.stderr)
		}
	}
}

func TestImageList(t *testing.T) {
	s := sysroottest.New(t)
	s.Deploy("b1", "1")
	s.Entries("b1")
	s.Boot("b1")
	root := s.Root.Deployment("default", "b1")
	sysroottest.Files(t, root, map[string]string{
		"usr/share/containers/systemd/a.container": "[Container]\nImage=quay.io/org/a:1\n",
		"usr/lib/bootc/bound-images.d/":            "",
	})
	if err := os.Symlink("/usr/share/containers/systemd/a.container", filepath.Join(root, "usr/lib/bootc/bound-images.d/a.container")); err != nil {
		t.Fatal(err)
	}
	env := []string{"BOOTC_SYSROOT=" + s.Root.Phys, "BOOTC_RUN_DIR=" + s.Root.Run}
	r := bootc(t, -1, env, "image", "list", "--type", "logical", "--format", "json")
	var rows []map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &rows); r.code != 0 || err != nil {
		t.Fatalf("bootc image list: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
	}
	if len(rows) != 1 || rows[0]["image_type"] != "logical" || rows[0]["image"] != "quay.io/org/a:1" {
		t.Errorf("bootc image list --type logical --format json: %v", rows)
	}
	r = bootc(t, -1, env, "image", "list")
	// The booted deployment's image is a host image under the name it tracks.
	table := regexp.MustCompile(`(?s)REPOSITORY +TYPE\n` + regexp.QuoteMeta(sysroottest.Image) + ` +host\nquay\.io/org/a:1 +logical\n`)
	if r.code != 0 || !table.MatchString(r.stdout) {
		t.Errorf("bootc image list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
