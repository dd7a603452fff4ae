package fetchtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Signer is a throw-away GnuPG home with one signing key, for simple-signing signatures made by
// skopeo.
type Signer struct {
	Home   string // GNUPGHOME
	KeyID  string // fingerprint of the signing key
	PubKey string // armored public key file, for policy.json keyPath
}

// NewSigner creates the key; it skips the test without gpg.
func NewSigner(t testing.TB) *Signer {
	t.Helper()
	Require(t, "gpg", "gpgconf")
	// gpg-agent's socket lives in the home; keep the path short (sun_path is 108 bytes).
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	s := &Signer{Home: home}
	t.Cleanup(func() {
		s.gpg("gpgconf", "--kill", "gpg-agent")
		os.RemoveAll(home)
	})
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// RSA: the pure-Go OpenPGP verifier that static builds use does not know EdDSA keys.
	if _, err := s.gpg("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
		"--quick-gen-key", "bootc test <test@bootc.invalid>", "rsa2048", "sign", "never"); err != nil {
		t.Fatal(err)
	}
	out, err := s.gpg("gpg", "--batch", "--with-colons", "--list-secret-keys")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" {
			s.KeyID = f[9]
			break
		}
	}
	if s.KeyID == "" {
		t.Fatalf("no key fingerprint in gpg output:\n%s", out)
	}
	pub, err := s.gpg("gpg", "--batch", "--armor", "--export", s.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	s.PubKey = filepath.Join(home, "pubkey.asc")
	if err := os.WriteFile(s.PubKey, []byte(pub), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Signer) gpg(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+s.Home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// WriteLookaside writes a registries.d directory at dir whose configuration stores and reads
// signatures for host in the directory sigdir (both as file:// lookaside), spelled both the
// current way and the older way so that older skopeo releases sign into the same place.
func WriteLookaside(dir, host, sigdir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(sigdir, 0o755); err != nil {
		return err
	}
	u := "file://" + sigdir
	conf := fmt.Sprintf("docker:\n  %s:\n    lookaside: %s\n    lookaside-staging: %s\n    sigstore: %s\n    sigstore-staging: %s\n", host, u, u, u, u)
	return os.WriteFile(filepath.Join(dir, "test.yaml"), []byte(conf), 0o644)
}

// PushSigned pushes src to name on the registry, signed by s, with signatures written to the
// lookaside configured in registriesD.
func (r *Registry) PushSigned(src, name string, s *Signer, registriesD string) {
	r.t.Helper()
	args := []string{"--registries.d", registriesD, "copy", "--preserve-digests", "--quiet", "--dest-tls-verify=false", "--sign-by", s.KeyID, src, "docker://" + r.Ref(name)}
	cmd := exec.Command("skopeo", args...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+s.Home, "REGISTRY_AUTH_FILE=/nonexistent/bootc-test-auth.json")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("skopeo %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
}

// WritePolicy writes a policy.json whose default is reject and which requires signatures by
// keyPath for every docker reference.
func WritePolicy(path, keyPath string) error {
	p := fmt.Sprintf(`{"default":[{"type":"reject"}],"transports":{"docker":{"":[{"type":"signedBy","keyType":"GPGKeys","keyPath":%q}]}}}`, keyPath)
	return os.WriteFile(path, []byte(p), 0o644)
}

// InsecurePolicy is a policy.json accepting anything.
const InsecurePolicy = `{"default":[{"type":"insecureAcceptAnything"}]}`
