package main

import (
	"testing"

	"gobootc.dev/lib/cli"
)

// upstreamFlags is upstream bootc's command line for the verbs the front parses itself (install
// is bootc-install's, with its own test): every flag an agent or a person may pass.
var upstreamFlags = map[string][]string{
	"upgrade":               {"quiet", "check", "apply", "soft-reboot", "download-only", "from-downloaded", "tag", "progress-fd"},
	"switch":                {"quiet", "apply", "soft-reboot", "progress-fd", "transport", "enforce-container-sigpolicy", "retain", "no-signature-verification", "mutate-in-place"},
	"rollback":              {"apply", "soft-reboot"},
	"edit":                  {"filename", "quiet"},
	"status":                {"format", "json", "format-version", "booted", "verbose"},
	"usr-overlay":           {"read-only"},
	"container lint":        {"rootfs", "fatal-warnings", "list", "skip", "no-truncate"},
	"image list":            {"type", "format"},
	"image copy-to-storage": {"source", "target"},
}

// Every verb and flag of upstream's CLI is accepted here, working or refused with "not
// supported: …" (the flag table says which); none is an unknown flag.
func TestUpstreamSurface(t *testing.T) {
	front := map[string][]string{}
	for verb, flags := range upstreamFlags {
		if verb == "status" {
			continue // handed to bootc-status, whose own test holds these
		}
		front[verb] = flags
		for _, f := range flags {
			if _, ok := frontFlags[verb+" --"+f]; !ok {
				t.Errorf("bootc %s: upstream's --%s has no flag table entry", verb, f)
			}
		}
	}
	missing, err := cli.MissingFlags(&CLI{}, front)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range missing {
		t.Errorf("bootc %s: upstream's flag is not in the grammar", key)
	}
}
