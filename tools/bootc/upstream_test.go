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
	uses, err := cli.FlagUses(&CLI{})
	if err != nil {
		t.Fatal(err)
	}
	ours := map[string]bool{}
	for _, u := range uses {
		ours[u.Key] = true
	}
	for verb, flags := range upstreamFlags {
		for _, f := range flags {
			key := verb + " --" + f
			if !ours[key] && !passedThrough(verb) {
				t.Errorf("bootc %s: upstream's --%s is not in the grammar", verb, f)
			}
			if _, ok := frontFlags[key]; !ok && !passedThrough(verb) {
				t.Errorf("bootc %s: upstream's --%s has no flag table entry", verb, f)
			}
		}
	}
}

// passedThrough says the front hands the verb's arguments to a step tool, whose own test checks
// its flags.
func passedThrough(verb string) bool { return verb == "status" }
