package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/alecthomas/kong"

	"gobootc.dev/lib/cli"
)

// upstreamCommon are the flags upstream's install commands share.
var upstreamCommon = []string{"source-imgref", "target-transport", "target-imgref", "enforce-container-sigpolicy",
	"target-no-signature-verification", "run-fetch-check", "skip-fetch-check", "experimental-unified-storage",
	"disable-selinux", "karg", "karg-delete", "root-ssh-authorized-keys", "generic-image", "bound-images", "stateroot",
	"bootupd-skip-boot-uuid", "bootloader", "composefs-backend", "allow-missing-verity", "uki-addon"}

// upstreamInstall are the flags of each of upstream's install commands beyond the common ones.
var upstreamInstall = map[string][]string{
	"to-disk":             {"wipe", "block-setup", "filesystem", "root-size", "via-loopback"},
	"to-filesystem":       {"root-mount-spec", "boot-mount-spec", "replace", "acknowledge-destructive", "skip-finalize"},
	"to-existing-root":    {"replace", "acknowledge-destructive", "cleanup"},
	"print-configuration": {"all"},
}

// Every install verb and flag of upstream's CLI is accepted here, working or refused with "not
// supported"; none is unknown. (`install reset` is bootc's own, tested there.)
func TestUpstreamSurface(t *testing.T) {
	want := map[string][]string{}
	for verb, flags := range upstreamInstall {
		if verb != "print-configuration" {
			flags = append(flags, upstreamCommon...)
		}
		want[verb] = flags
	}
	missing, err := cli.MissingFlags(&CLI{}, want)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range missing {
		t.Errorf("install %s: upstream's flag is not in the grammar", key)
	}
	for _, verb := range []string{"finalize", "ensure-completion"} {
		var out, errOut bytes.Buffer
		code := cli.Run("bootc install", "", &CLI{}, []string{verb, "--experimental", "/target"}, &out, &errOut,
			func(ctx context.Context, k *kong.Context) error { return (&CLI{}).runner(&out, &errOut)(ctx, k) })
		if code != cli.ExitUsage || !strings.Contains(errOut.String(), "bootc install "+verb+": error: not supported in this build") {
			t.Errorf("install %s: exit %d, stderr %q; want it refused as not supported", verb, code, errOut.String())
		}
	}
}
