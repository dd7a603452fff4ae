package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gobootc.dev/lib/fetchtest"
	"gobootc.dev/lib/host"
)

// Real GPG simple signing: skopeo signs into a file:// lookaside, the fetch verifies against a
// policy.json signedBy rule.
func TestSignaturePolicy(t *testing.T) {
	e := newEnv(t)
	signer := fetchtest.NewSigner(t)
	dir := t.TempDir()
	regD := filepath.Join(dir, "registries.d")
	// The lookaside is keyed by registry host; fetches go to the registry itself here.
	if err := fetchtest.WriteLookaside(regD, e.reg.Host, filepath.Join(dir, "sigs")); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.json")
	if err := fetchtest.WritePolicy(policy, signer.PubKey); err != nil {
		t.Fatal(err)
	}
	insecure := filepath.Join(dir, "insecure.json")
	os.WriteFile(insecure, []byte(fetchtest.InsecurePolicy), 0o644)

	signed, err := fetchtest.WriteLayout(e.oci, "signed", fetchtest.Bootable("1"))
	if err != nil {
		t.Fatal(err)
	}
	e.reg.PushSigned("oci:"+e.oci+":signed", "os:signed", signer, regD)
	unsigned := e.push("os:unsigned", fetchtest.Bootable("2"))
	if sigs, _ := filepath.Glob(filepath.Join(dir, "sigs", "*", "*")); len(sigs) == 0 {
		t.Fatal("skopeo wrote no signature into the lookaside")
	}

	for _, tc := range []struct {
		name, tag, policy string
		enforce           bool
		want              string // error substring, "" for success
		is                error
	}{
		{"signed accepted", "os:signed", policy, true, "", nil},
		{"unsigned rejected", "os:unsigned", policy, true, "signature", nil},
		{"insecure default refused", "os:signed", insecure, true, "insecureAcceptAnything", ErrInsecurePolicy},
		{"no enforcement, no check", "os:unsigned", policy, false, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := e.cli(e.reg.Ref(tc.tag))
			c.RegistriesD, c.SignaturePolicy, c.EnforceContainerSigpolicy = regD, tc.policy, tc.enforce
			_, stderr, err := run(t, e.root(c))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("%v\n%s", err, stderr)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || !strings.Contains(msg, e.reg.Ref(tc.tag)) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line with %q and the reference", msg, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v is not %v", err, tc.is)
			}
		})
	}
	fi := readFetched(t, e, signed.ManifestDigest)
	if s := fi.Image.Ref.Signature; s == nil || s.Mode != host.SignatureContainerPolicy {
		t.Errorf("signature mode not recorded: %+v", fi.Image.Ref)
	}
	if fi := readFetched(t, e, unsigned.ManifestDigest); fi.Image.Ref.Signature != nil {
		t.Errorf("unenforced fetch recorded %+v", fi.Image.Ref.Signature)
	}

	// The booted deployment's containerPolicy mode applies without the flag.
	e.bootFrom("a", e.reg.Ref("os:signed"), signed, &host.ImageSignature{Mode: host.SignatureContainerPolicy})
	c, _ := e.cli("")
	c.RegistriesD, c.SignaturePolicy, c.Tag = regD, policy, "unsigned"
	if _, _, err := run(t, e.root(c)); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Errorf("inherited enforcement: %v", err)
	}
}
