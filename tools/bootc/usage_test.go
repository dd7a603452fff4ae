package main

import (
	"os"
	"strings"
	"testing"

	"gobootc.dev/lib/sysroottest"
)

func isRoot() bool { return os.Geteuid() == 0 }

// TestUsageErrors: for each verb, a bad flag and a missing, extra or bad argument exit with
// status 2 and one line that names the command as typed and the problem. Verbs that a step tool
// owns (status, install) answer under the user's words too.
func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, "bootc: error: unexpected argument frobnicate"},
		{[]string{"--bogus"}, "bootc: error: unknown flag --bogus"},

		{[]string{"status", "--bogus"}, "bootc status: error: unknown flag --bogus"},
		{[]string{"status", "extra"}, "bootc status: error: unexpected argument extra"},
		{[]string{"status", "--format=xml"}, `bootc status: error: --format "xml" is not one of humanreadable, yaml, json`},
		{[]string{"status", "--format-version=2"}, "bootc status: error: --format-version 2 is not supported (use 0 or 1)"},
		{[]string{"status", "--json", "--format=yaml"}, "bootc status: error: --json conflicts with --format=yaml"},

		{[]string{"upgrade", "--bogus"}, "bootc upgrade: error: unknown flag --bogus"},
		{[]string{"upgrade", "extra"}, "bootc upgrade: error: unexpected argument extra"},
		{[]string{"update", "--bogus"}, "bootc upgrade: error: unknown flag --bogus"},
		{[]string{"upgrade", "--check", "--apply"}, "bootc upgrade: error: --check and --apply can't be used together"},
		{[]string{"upgrade", "--from-downloaded", "--tag=2"}, "bootc upgrade: error: --from-downloaded and --tag can't be used together"},
		{[]string{"upgrade", "--soft-reboot=sometimes"}, `bootc upgrade: error: --soft-reboot must be one of "required","auto","" but got "sometimes"`},
		{[]string{"upgrade", "--soft-reboot=auto"}, "bootc upgrade: error: not supported: --soft-reboot (soft reboots are not implemented; --apply reboots fully)"},

		{[]string{"switch", "--bogus", "quay.io/a/b:1"}, "bootc switch: error: unknown flag --bogus"},
		{[]string{"switch"}, `bootc switch: error: expected "<target>"`},
		{[]string{"switch", "quay.io/a/b:1", "extra"}, "bootc switch: error: unexpected argument extra"},
		{[]string{"switch", "--transport=bogus", "quay.io/a/b:1"}, `bootc switch: error: unknown transport "bogus" (valid: registry, oci, oci-archive, containers-storage, dir, docker-archive)`},
		{[]string{"switch", "--mutate-in-place", "quay.io/a/b:1"}, "bootc switch: error: not supported: --mutate-in-place (changing the booted deployment in place is not implemented)"},

		{[]string{"rollback", "--bogus"}, "bootc rollback: error: unknown flag --bogus"},
		{[]string{"rollback", "extra"}, "bootc rollback: error: unexpected argument extra"},
		{[]string{"rollback", "--soft-reboot=auto"}, "bootc rollback: error: not supported: --soft-reboot (soft reboots are not implemented; --apply reboots fully)"},

		{[]string{"edit", "--bogus"}, "bootc edit: error: unknown flag --bogus"},
		{[]string{"edit", "extra"}, "bootc edit: error: unexpected argument extra"},

		{[]string{"usr-overlay", "--bogus"}, "bootc usr-overlay: error: unknown flag --bogus"},
		{[]string{"usr-overlay", "extra"}, "bootc usr-overlay: error: unexpected argument extra"},
		{[]string{"--sysroot=/", "usr-overlay"}, "bootc usr-overlay: error: not supported: --sysroot (bootc usr-overlay does not use it)"},

		{[]string{"install"}, `bootc install: error: expected one of "to-disk", "to-filesystem", "to-existing-root", "print-configuration"`},
		{[]string{"install", "--bogus"}, "bootc install: error: unknown flag --bogus"},
		{[]string{"install", "frobnicate"}, "bootc install: error: unexpected argument frobnicate"},
		{[]string{"install", "to-disk"}, `bootc install to-disk: error: expected "<device>"`},
		{[]string{"install", "to-disk", "--bogus", "/dev/null"}, "bootc install to-disk: error: unknown flag --bogus"},
		{[]string{"install", "to-disk", "/dev/null", "extra"}, "bootc install to-disk: error: unexpected argument extra"},
		{[]string{"install", "print-configuration", "extra"}, "bootc install print-configuration: error: unexpected argument extra"},
		{[]string{"--sysroot=/", "install", "to-disk", "/dev/null"}, "bootc install: error: not supported: --sysroot (bootc install does not use it)"},

		{[]string{"container"}, `bootc container: error: expected "lint"`},
		{[]string{"container", "lint", "--bogus"}, "bootc container lint: error: unknown flag --bogus"},
		{[]string{"container", "lint", "extra"}, "bootc container lint: error: unexpected argument extra"},
		{[]string{"--sysroot=/", "container", "lint"}, "bootc container lint: error: not supported: --sysroot (bootc container lint does not use it)"},

		{[]string{"image"}, `bootc image: error: expected one of "list", "copy-to-storage", "unretain"`},
		{[]string{"image", "list", "--bogus"}, "bootc image list: error: unknown flag --bogus"},
		{[]string{"image", "list", "extra"}, "bootc image list: error: unexpected argument extra"},
		{[]string{"image", "list", "--type=bogus"}, `bootc image list: error: --type must be one of "all","logical","host" but got "bogus"`},
		{[]string{"image", "copy-to-storage", "--bogus"}, "bootc image copy-to-storage: error: unknown flag --bogus"},
		{[]string{"image", "copy-to-storage", "extra"}, "bootc image copy-to-storage: error: unexpected argument extra"},
		{[]string{"image", "copy-to-storage"}, "bootc image copy-to-storage: error: not supported in this build"},
		{[]string{"image", "copy-to-storage", "--source=quay.io/a/b:1"}, "bootc image copy-to-storage: error: not supported: --source (bootc image copy-to-storage is not in this build)"},
		{[]string{"image", "unretain"}, "bootc image unretain: error: name the retained images to let go, or pass --all"},
		{[]string{"image", "unretain", "--all", "x"}, "bootc image unretain: error: name the retained images to let go, or pass --all"},

		{[]string{"offline-update"}, "bootc offline-update: error: missing flags: --device=STRING"},
		{[]string{"offline-update", "--device=/dev/null", "extra"}, "bootc offline-update: error: unexpected argument extra"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			// A root that is not deployed: nothing can change if a case is not refused.
			r := bootc(t, -1, []string{"BOOTC_SYSROOT=" + t.TempDir(), "BOOTC_RUN_DIR=" + t.TempDir()}, c.args...)
			if r.code != 2 || r.stderr != c.want+"\n" {
				t.Errorf("exit %d, stderr %q\nwant exit 2, stderr %q", r.code, r.stderr, c.want+"\n")
			}
			if r.stdout != "" {
				t.Errorf("stdout %q", r.stdout)
			}
		})
	}
}

// TestHelpShowsTheVerb: help shown for a verb a step tool owns speaks of `bootc VERB`, never of
// the step tool, which is not on $PATH.
func TestHelpShowsTheVerb(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"status", "--help"}, []string{"Usage: bootc status [flags]", "--json", "--format=FORMAT"}},
		{[]string{"install", "--help"}, []string{"Usage: bootc install <command>", `Run "bootc install <command> --help"`}},
		{[]string{"install", "to-disk", "--help"}, []string{"Usage: bootc install to-disk <device> [flags]"}},
		{[]string{"upgrade", "--help"}, []string{"Usage: bootc upgrade (update) [flags]", "--check"}},
		{[]string{"image", "list", "--help"}, []string{"Usage: bootc image list [flags]"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			// Help needs no privileges: run it as nobody when we can.
			uid := -1
			if isRoot() {
				uid = nobody
			}
			r := bootc(t, uid, nil, c.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("help lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "bootc-") {
				t.Errorf("help names a step tool:\n%s", r.stdout)
			}
		})
	}
}

// TestErrorsNameTheVerb: a refusal after the command line was understood names the verb, and a
// failing step tool's error is the only line: the front adds none of its own.
func TestErrorsNameTheVerb(t *testing.T) {
	needRoot(t)
	empty := t.TempDir()
	host := []string{"BOOTC_SKIP_CONTAINER_CHECK=1", "BOOTC_SYSROOT=" + empty}
	r := bootc(t, 0, host, "upgrade")
	if want := "bootc upgrade: error: this system is not deployed via bootc (no " + empty + "/bootc)\n"; r.code != 1 || r.stderr != want {
		t.Errorf("upgrade on a root bootc does not manage: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}

	s := sysroottest.New(t)
	s.Deploy("aaaa.0", "1")
	s.Entries("aaaa.0")
	s.Boot("aaaa.0")
	env := []string{"BOOTC_SKIP_CONTAINER_CHECK=1", "BOOTC_SYSROOT=" + s.Root.Phys, "BOOTC_RUN_DIR=" + s.Root.Run}
	missing := t.TempDir() + "/no-such-layout"
	r = bootc(t, 0, env, "switch", "--quiet", "--transport=oci", missing)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "bootc switch: error: ") || !strings.Contains(r.stderr, missing) {
		t.Errorf("switch to a missing layout: exit %d, stderr %q: want one line \"bootc switch: error: …%s…\"", r.code, r.stderr, missing)
	}
}
