package imgref

import (
	"errors"
	"strings"
	"testing"

	"gobootc.dev/lib/fuzztest"
)

// seedTransports are the transport names a seed image is tried with: every valid one, the
// default and one that is not a transport.
var seedTransports = []string{"", "registry", "docker", "oci", "oci-archive", "containers-storage", "dir", "docker-archive", "docker-daemon"}

// FuzzParse checks what Parse promises for any transport and image: a one-line error that says
// which rule was broken, or a Ref that validates, keeps the image verbatim, whose canonical form
// is a fixed point naming the same image, and whose skopeo spelling parses back to it.
func FuzzParse(f *testing.F) {
	for i, s := range fuzztest.Literals(f) {
		f.Add(seedTransports[i%len(seedTransports)], s)
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, transport, image string) {
		r, err := Parse(transport, image)
		if err != nil {
			fuzztest.OneLine(t, err)
			if !errors.Is(err, ErrInvalidReference) && !errors.Is(err, ErrUnknownTransport) {
				t.Errorf("Parse(%q, %q): error matches no sentinel: %v", transport, image, err)
			}
			return
		}
		checkRef(t, r)
		if r.Image != image {
			t.Errorf("Parse(%q, %q).Image = %q, want the image verbatim", transport, image, r.Image)
		}
	})
}

// FuzzParseTransportString does the same for the skopeo spelling ("docker://…", "oci:/p:name").
func FuzzParseTransportString(f *testing.F) {
	for _, s := range fuzztest.Literals(f) {
		f.Add(s)
	}
	for _, tr := range seedTransports[1:] {
		f.Add(tr + ":/var/mnt/osupdate:latest")
		f.Add(tr + "://quay.io/a/b:1")
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseTransportString(s)
		if err != nil {
			fuzztest.OneLine(t, err)
			return
		}
		checkRef(t, r)
	})
}

// FuzzResolve checks that a relative path given on the command line becomes an absolute one
// below the base directory, and that whatever Resolve accepts is a valid Ref.
func FuzzResolve(f *testing.F) {
	for i, s := range fuzztest.Literals(f) {
		f.Add(seedTransports[i%len(seedTransports)], s)
	}
	f.Add("oci", "osupdate:latest")
	f.Add("dir", "../img")
	f.Fuzz(func(t *testing.T, transport, image string) {
		const base = "/var/home/user"
		r, err := Resolve(transport, image, base)
		if err != nil {
			fuzztest.OneLine(t, err)
			return
		}
		checkRef(t, r)
		if r.Transport.hasPath() && !strings.HasPrefix(r.Image, "/") {
			t.Errorf("Resolve(%q, %q) = %q: path is not absolute", transport, image, r.Image)
		}
	})
}

func checkRef(t *testing.T, r Ref) {
	t.Helper()
	if err := r.Validate(); err != nil {
		t.Fatalf("%#v was accepted but does not validate: %v", r, err)
	}
	if !r.Equal(r) {
		t.Errorf("%#v is not Equal to itself", r)
	}

	canon := r.Canonical()
	c, err := Parse(string(r.Transport), canon)
	if err != nil {
		t.Fatalf("canonical form %q of %#v does not parse: %v", canon, r, err)
	}
	if c.Canonical() != canon {
		t.Errorf("canonical form of %#v is not stable: %q, then %q", r, canon, c.Canonical())
	}
	if !c.Equal(r) {
		t.Errorf("canonical form %q names another image than %#v", canon, r)
	}
	// Registry names without tag or digest canonicalize with the implied ":latest".
	impliedLatest := r.Tag() == "" && c.Tag() == "latest" && r.Digest() == "" &&
		(r.normalTransport() == Registry || r.normalTransport() == ContainersStorage)
	if (c.Tag() != r.Tag() && !impliedLatest) || c.Digest() != r.Digest() {
		t.Errorf("canonical form %q changed tag or digest: %q %q, was %q %q", canon, c.Tag(), c.Digest(), r.Tag(), r.Digest())
	}

	ts := r.TransportString()
	back, err := ParseTransportString(ts)
	if err != nil {
		t.Fatalf("transport string %q of %#v does not parse: %v", ts, r, err)
	}
	if back != r {
		t.Errorf("transport string %q reads back as %#v, want %#v", ts, back, r)
	}

	if d := r.Digest(); d != "" {
		if err := d.Validate(); err != nil {
			t.Errorf("%#v has an invalid digest %q: %v", r, d, err)
		}
	}
	ff := r.ForFetch()
	if err := ff.Validate(); err != nil {
		t.Errorf("ForFetch of %#v = %#v, which does not validate: %v", r, ff, err)
	}
	if ff.Digest() != r.Digest() {
		t.Errorf("ForFetch of %#v changed the digest to %q", r, ff.Digest())
	}

	for _, tag := range []string{"v1", r.Tag()} {
		if tag == "" || strings.HasPrefix(tag, "@") {
			continue
		}
		w, err := r.WithTag(tag)
		if err != nil {
			if errors.Is(err, ErrTagNotSupported) && (r.Transport == Dir || r.Transport == DockerArchive) {
				continue
			}
			if r.Transport == ContainersStorage && errors.Is(err, ErrTagNotSupported) {
				continue // a bare image ID has no name to tag
			}
			t.Errorf("%#v.WithTag(%q): %v", r, tag, err)
			continue
		}
		if err := w.Validate(); err != nil {
			t.Errorf("%#v.WithTag(%q) = %#v, which does not validate: %v", r, tag, w, err)
		}
		if w.Tag() != tag {
			t.Errorf("%#v.WithTag(%q).Tag() = %q", r, tag, w.Tag())
		}
	}
}
