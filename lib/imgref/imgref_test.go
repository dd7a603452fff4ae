package imgref

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
)

const (
	hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	dgst  = "sha256:" + hex64
)

func TestParseTransport(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Transport
	}{
		{"registry", Registry},
		{"docker", Registry},
		{"oci", OCI},
		{"oci-archive", OCIArchive},
		{"containers-storage", ContainersStorage},
		{"dir", Dir},
		{"docker-archive", DockerArchive},
	} {
		got, err := ParseTransport(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseTransport(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "Registry", "docker-daemon", "ostree-unverified-registry", "oci ", "docker://"} {
		_, err := ParseTransport(bad)
		if !errors.Is(err, ErrUnknownTransport) {
			t.Errorf("ParseTransport(%q) error = %v; want ErrUnknownTransport", bad, err)
			continue
		}
		// The message must name the bad value and every valid choice.
		msg := err.Error()
		if !strings.Contains(msg, `"`+bad+`"`) {
			t.Errorf("ParseTransport(%q) error %q does not name the input", bad, msg)
		}
		for _, tr := range Transports() {
			if !strings.Contains(msg, string(tr)) {
				t.Errorf("ParseTransport(%q) error %q does not list %s", bad, msg, tr)
			}
		}
	}
	if got := Registry.ContainersImageName(); got != "docker" {
		t.Errorf("Registry.ContainersImageName() = %q", got)
	}
	if got := OCIArchive.ContainersImageName(); got != "oci-archive" {
		t.Errorf("OCIArchive.ContainersImageName() = %q", got)
	}
}

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		transport, image string
		wantTransport    Transport
		canonical        string
		tag              string
		digest           string
	}{
		{"registry", "quay.io/centos-bootc/centos-bootc:stream9", Registry, "quay.io/centos-bootc/centos-bootc:stream9", "stream9", ""},
		{"", "quay.io/a/b", Registry, "quay.io/a/b:latest", "", ""},
		{"docker", "busybox", Registry, "docker.io/library/busybox:latest", "", ""},
		{"registry", "busybox:1.36", Registry, "docker.io/library/busybox:1.36", "1.36", ""},
		{"registry", "fedora/fedora:41", Registry, "docker.io/fedora/fedora:41", "41", ""},
		{"registry", "index.docker.io/library/busybox", Registry, "docker.io/library/busybox:latest", "", ""},
		{"registry", "localhost/bootc-tag-test:v1", Registry, "localhost/bootc-tag-test:v1", "v1", ""},
		{"registry", "localhost:5000/x", Registry, "localhost:5000/x:latest", "", ""},
		{"registry", "127.0.0.1:5000/a/b/c:t_1.2-x", Registry, "127.0.0.1:5000/a/b/c:t_1.2-x", "t_1.2-x", ""},
		{"registry", "Quay.IO/a/b:1", Registry, "Quay.IO/a/b:1", "1", ""}, // host names are case-insensitive
		{"registry", "quay.io/a/b@" + dgst, Registry, "quay.io/a/b@" + dgst, "", dgst},
		{"registry", "quay.io/a/b:1@" + dgst, Registry, "quay.io/a/b:1@" + dgst, "1", dgst},
		{"registry", "quay.io/a__b/c-d.e:X", Registry, "quay.io/a__b/c-d.e:X", "X", ""},
		{"oci", "/var/mnt/osupdate", OCI, "/var/mnt/osupdate", "", ""},
		{"oci", "/var/mnt/osupdate:latest", OCI, "/var/mnt/osupdate:latest", "latest", ""},
		{"oci", "/var/mnt//osupdate/:stable/x86_64", OCI, "/var/mnt/osupdate:stable/x86_64", "stable/x86_64", ""},
		{"oci", "/l:@0", OCI, "/l:@0", "", ""},
		{"oci-archive", "/srv/img.tar", OCIArchive, "/srv/img.tar", "", ""},
		{"oci-archive", "/srv/img.tar:v1.2", OCIArchive, "/srv/img.tar:v1.2", "v1.2", ""},
		{"containers-storage", "localhost/x", ContainersStorage, "localhost/x:latest", "", ""},
		{"containers-storage", "quay.io/a/b:2", ContainersStorage, "quay.io/a/b:2", "2", ""},
		{"containers-storage", "x", ContainersStorage, "docker.io/library/x:latest", "", ""},
		{"containers-storage", "[overlay@/var/lib/containers/storage]localhost/x", ContainersStorage,
			"[overlay@/var/lib/containers/storage]localhost/x:latest", "", ""},
		{"containers-storage", "localhost/x@" + hex64, ContainersStorage, "localhost/x:latest@" + hex64, "", ""},
		{"containers-storage", hex64, ContainersStorage, hex64, "", ""},
		{"containers-storage", "localhost/x@" + dgst, ContainersStorage, "localhost/x@" + dgst, "", dgst},
		{"dir", "/var/tmp/img/", Dir, "/var/tmp/img", "", ""},
		{"docker-archive", "/p.tar", DockerArchive, "/p.tar", "", ""},
		{"docker-archive", "/p.tar:busybox", DockerArchive, "/p.tar:docker.io/library/busybox:latest", "", ""},
		{"docker-archive", "/p.tar:@1", DockerArchive, "/p.tar:@1", "", ""},
	} {
		r, err := Parse(tc.transport, tc.image)
		if err != nil {
			t.Errorf("Parse(%q, %q): %v", tc.transport, tc.image, err)
			continue
		}
		if r.Transport != tc.wantTransport || r.Image != tc.image {
			t.Errorf("Parse(%q, %q) = %#v; want transport %q and the image verbatim", tc.transport, tc.image, r, tc.wantTransport)
		}
		if got := r.Canonical(); got != tc.canonical {
			t.Errorf("Parse(%q, %q).Canonical() = %q; want %q", tc.transport, tc.image, got, tc.canonical)
		}
		if got := r.Tag(); got != tc.tag {
			t.Errorf("Parse(%q, %q).Tag() = %q; want %q", tc.transport, tc.image, got, tc.tag)
		}
		if got := string(r.Digest()); got != tc.digest {
			t.Errorf("Parse(%q, %q).Digest() = %q; want %q", tc.transport, tc.image, got, tc.digest)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct {
		transport, image string
		reason           string // fragment the one-line error must contain
	}{
		{"registry", "", "empty name"},
		{"registry", "quay.io/A/b", `repository name "A/b" must be lowercase`},
		{"registry", "Busybox", `repository name "Busybox" must be lowercase`},
		{"registry", "quay.io/a/b@sha256:abc", `bad digest "sha256:abc"`},
		{"registry", "quay.io/a/b@sha256:" + strings.ToUpper(hex64), "bad digest"},
		{"registry", "quay.io/a/b@md5:d41d8cd98f00b204e9800998ecf8427e", "bad digest"},
		{"registry", "quay.io/a/b@", "empty digest"},
		{"registry", "quay.io/a/b@" + dgst + "@" + dgst, "more than one '@'"},
		{"registry", "@" + dgst, "missing repository name"},
		{"registry", "quay.io/a/b:", "empty tag"},
		{"registry", "quay.io/a/b:-x", `bad tag "-x"`},
		{"registry", "quay.io/a/b:.x", `bad tag ".x"`},
		{"registry", "quay.io/a/b:" + strings.Repeat("t", 129), "bad tag"},
		{"registry", "quay.io/a/b:t+1", `bad tag "t+1"`},
		{"registry", "quay.io//b", "not a valid name"},
		{"registry", "quay.io/a/b/", "not a valid name"},
		{"registry", "-a/b", "not a valid name"},
		{"registry", "a..b/c", "not a valid name"},
		{"registry", "quay.io/a b", "whitespace"},
		{"registry", " quay.io/a", "whitespace"},
		{"registry", "quay.io/a\n", "whitespace"},
		{"registry", "docker://quay.io/a", "looks like a URL"},
		{"registry", hex64, "image ID"},
		{"registry", "quay.io/" + strings.Repeat("a", 256), "must not be more than"},
		{"oci", "", "empty path"},
		{"oci", "relative/dir", "is relative"},
		{"oci", "./dir:tag", "is relative"},
		{"oci", "/p:", "empty image name"},
		{"oci", "/p:bad tag", `bad image name "bad tag"`},
		{"oci", "/p:-x", `bad image name "-x"`},
		{"oci", "/p:@x", `bad image index "@x"`},
		{"oci", "/p:@-1", `bad image index "@-1"`},
		{"oci", "/p:@01", `bad image index "@01"`},
		{"oci", "/p\x00x", "control characters"},
		{"oci-archive", "img.tar", "is relative"},
		{"oci-archive", ":tag", "empty path"},
		{"containers-storage", "", "empty name"},
		{"containers-storage", "[overlay@/x", "no closing ']'"},
		{"containers-storage", "[]localhost/x", "empty store specifier"},
		{"containers-storage", "[overlay@/x]", "empty name"},
		{"containers-storage", "localhost/X", "must be lowercase"},
		{"containers-storage", "localhost/x@sha256:12", "bad digest"},
		{"dir", "", "empty path"},
		{"dir", "rel", "is relative"},
		{"dir", "/p:x", "contains ':'"},
		{"docker-archive", "p.tar", "is relative"},
		{"docker-archive", "/p.tar:", "empty reference"},
		{"docker-archive", "/p.tar:Busybox", "must be lowercase"},
		{"docker-archive", "/p.tar:busybox@" + dgst, "only hold tags"},
		{"docker-archive", "/p.tar:@z", "bad image index"},
	} {
		_, err := Parse(tc.transport, tc.image)
		if err == nil {
			t.Errorf("Parse(%q, %q) succeeded; want error containing %q", tc.transport, tc.image, tc.reason)
			continue
		}
		msg := err.Error()
		if !errors.Is(err, ErrInvalidReference) {
			t.Errorf("Parse(%q, %q) error %q is not ErrInvalidReference", tc.transport, tc.image, msg)
		}
		if !strings.Contains(msg, tc.reason) {
			t.Errorf("Parse(%q, %q) error %q; want it to contain %q", tc.transport, tc.image, msg, tc.reason)
		}
		if strings.Contains(msg, "\n") {
			t.Errorf("Parse(%q, %q) error spans lines: %q", tc.transport, tc.image, msg)
		}
		if !strings.Contains(msg, strconv.Quote(tc.image)) {
			t.Errorf("Parse(%q, %q) error %q does not name the reference", tc.transport, tc.image, msg)
		}
	}
	if _, err := Parse("podman", "x"); !errors.Is(err, ErrUnknownTransport) {
		t.Errorf("Parse with unknown transport: %v", err)
	}
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		transport, image, dir string
		want                  string // Image of the result; "" means an error is expected
	}{
		{"oci", "layout:tag", "/srv", "/srv/layout:tag"},
		{"oci", "./a/../layout", "/srv", "/srv/layout"},
		{"oci", "/abs:tag", "/srv", "/abs:tag"},
		{"oci-archive", "img.tar", "/root", "/root/img.tar"},
		{"dir", "d", "/x", "/x/d"},
		{"docker-archive", "a.tar:busybox", "/x", "/x/a.tar:busybox"},
		{"registry", "quay.io/a/b", "rel", "quay.io/a/b"},
		{"oci", "layout", "relative-base", ""},
		{"oci", "layout:Bad Tag", "/srv", ""},
	} {
		r, err := Resolve(tc.transport, tc.image, tc.dir)
		if tc.want == "" {
			if err == nil {
				t.Errorf("Resolve(%q, %q, %q) = %#v; want error", tc.transport, tc.image, tc.dir, r)
			}
			continue
		}
		if err != nil || r.Image != tc.want {
			t.Errorf("Resolve(%q, %q, %q) = %#v, %v; want image %q", tc.transport, tc.image, tc.dir, r, err, tc.want)
		}
	}
}

func TestTransportStrings(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Ref
		display string
		out     string // TransportString of the result
	}{
		{"docker://quay.io/a/b:1", Ref{Registry, "quay.io/a/b:1"}, "quay.io/a/b:1", "docker://quay.io/a/b:1"},
		{"quay.io/a/b:1", Ref{Registry, "quay.io/a/b:1"}, "quay.io/a/b:1", "docker://quay.io/a/b:1"},
		{"registry:quay.io/a/b", Ref{Registry, "quay.io/a/b"}, "quay.io/a/b", "docker://quay.io/a/b"},
		{"busybox", Ref{Registry, "busybox"}, "busybox", "docker://busybox"},
		{"busybox:latest", Ref{Registry, "busybox:latest"}, "busybox:latest", "docker://busybox:latest"},
		{"localhost:5000/x:1", Ref{Registry, "localhost:5000/x:1"}, "localhost:5000/x:1", "docker://localhost:5000/x:1"},
		{"oci:/path:tag", Ref{OCI, "/path:tag"}, "oci:/path:tag", "oci:/path:tag"},
		{"oci:/var/mnt/osupdate", Ref{OCI, "/var/mnt/osupdate"}, "oci:/var/mnt/osupdate", "oci:/var/mnt/osupdate"},
		{"oci-archive:/p.tar", Ref{OCIArchive, "/p.tar"}, "oci-archive:/p.tar", "oci-archive:/p.tar"},
		{"containers-storage:localhost/x", Ref{ContainersStorage, "localhost/x"}, "containers-storage:localhost/x", "containers-storage:localhost/x"},
		{"dir:/p", Ref{Dir, "/p"}, "dir:/p", "dir:/p"},
		{"docker-archive:/p.tar", Ref{DockerArchive, "/p.tar"}, "docker-archive:/p.tar", "docker-archive:/p.tar"},
		{"docker-archive:/p.tar:busybox", Ref{DockerArchive, "/p.tar:busybox"}, "docker-archive:/p.tar:busybox", "docker-archive:/p.tar:busybox"},
	} {
		r, err := ParseTransportString(tc.in)
		if err != nil {
			t.Errorf("ParseTransportString(%q): %v", tc.in, err)
			continue
		}
		if r != tc.want {
			t.Errorf("ParseTransportString(%q) = %#v; want %#v", tc.in, r, tc.want)
		}
		if got := r.Display(); got != tc.display {
			t.Errorf("%q Display() = %q; want %q", tc.in, got, tc.display)
		}
		if got := r.String(); got != tc.display {
			t.Errorf("%q String() = %q; want %q", tc.in, got, tc.display)
		}
		if got := r.TransportString(); got != tc.out {
			t.Errorf("%q TransportString() = %q; want %q", tc.in, got, tc.out)
		}
		back, err := ParseTransportString(r.TransportString())
		if err != nil || back != r {
			t.Errorf("round trip of %q: %#v, %v", tc.in, back, err)
		}
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", ErrInvalidReference},
		{"docker:quay.io/a", ErrInvalidReference},
		{"docker://", ErrInvalidReference},
		{"docker://quay/X", ErrInvalidReference},
		{"oci:", ErrInvalidReference},
		{"oci:relative", ErrInvalidReference},
		{"oci:5000/x", ErrInvalidReference}, // a known transport wins over a host named "oci"
		{"dir:/a:b", ErrInvalidReference},
		{"docker-daemon:busybox:latest", ErrUnknownTransport},
		{"ostree-unverified-registry:quay.io/a", ErrUnknownTransport},
		{"podman:x/y", ErrUnknownTransport},
		{"Docker://x", ErrInvalidReference},
		{"quay.io/a/B:1", ErrInvalidReference},
		{"quay.io/a:b:c", ErrInvalidReference},
	} {
		r, err := ParseTransportString(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("ParseTransportString(%q) = %#v, %v; want %v", tc.in, r, err, tc.want)
		}
	}
}

// The fixtures in shared/spec show how status prints the image of each transport.
func TestDisplayMatchesStatusFixtures(t *testing.T) {
	for _, tc := range []struct {
		ref  Ref
		want string
	}{
		{Ref{OCI, "/var/mnt/osupdate"}, "oci:/var/mnt/osupdate"},
		{Ref{Registry, "quay.io/centos-bootc/centos-bootc:stream9"}, "quay.io/centos-bootc/centos-bootc:stream9"},
		{Ref{ContainersStorage, "localhost/bootc"}, "containers-storage:localhost/bootc"},
	} {
		if got := tc.ref.Display(); got != tc.want {
			t.Errorf("%#v.Display() = %q; want %q", tc.ref, got, tc.want)
		}
	}
}

func TestWithTag(t *testing.T) {
	for _, tc := range []struct {
		ref  Ref
		tag  string
		want Ref
	}{
		{Ref{Registry, "localhost/bootc-tag-test:v1"}, "v2", Ref{Registry, "localhost/bootc-tag-test:v2"}},
		{Ref{Registry, "busybox"}, "1.36", Ref{Registry, "busybox:1.36"}},
		{Ref{Registry, "localhost:5000/x"}, "t", Ref{Registry, "localhost:5000/x:t"}},
		{Ref{Registry, "quay.io/a/b@" + dgst}, "v3", Ref{Registry, "quay.io/a/b:v3"}},
		{Ref{Registry, "quay.io/a/b:1@" + dgst}, "2", Ref{Registry, "quay.io/a/b:2"}},
		{Ref{ContainersStorage, "localhost/x:1"}, "2", Ref{ContainersStorage, "localhost/x:2"}},
		{Ref{ContainersStorage, "[vfs@/s]localhost/x@" + hex64}, "2", Ref{ContainersStorage, "[vfs@/s]localhost/x:2"}},
		{Ref{OCI, "/var/mnt/osupdate:latest"}, "v2", Ref{OCI, "/var/mnt/osupdate:v2"}},
		{Ref{OCI, "/var/mnt/osupdate"}, "v2", Ref{OCI, "/var/mnt/osupdate:v2"}},
		{Ref{OCIArchive, "/p.tar:@0"}, "stable", Ref{OCIArchive, "/p.tar:stable"}},
	} {
		got, err := tc.ref.WithTag(tc.tag)
		if err != nil || got != tc.want {
			t.Errorf("%#v.WithTag(%q) = %#v, %v; want %#v", tc.ref, tc.tag, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		ref  Ref
		tag  string
		want error
	}{
		{Ref{Registry, "quay.io/a/b:1"}, "", ErrInvalidTag},
		{Ref{Registry, "quay.io/a/b:1"}, "bad tag", ErrInvalidTag},
		{Ref{Registry, "quay.io/a/b:1"}, "-x", ErrInvalidTag},
		{Ref{Registry, "quay.io/a/b:1"}, "a/b", ErrInvalidTag},
		{Ref{ContainersStorage, "localhost/x"}, "a:b", ErrInvalidTag},
		{Ref{OCI, "/p"}, "", ErrInvalidTag},
		{Ref{OCI, "/p"}, "@1", ErrInvalidTag},
		{Ref{Dir, "/p"}, "v2", ErrTagNotSupported},
		{Ref{DockerArchive, "/p.tar:busybox"}, "v2", ErrTagNotSupported},
		{Ref{ContainersStorage, hex64}, "v2", ErrTagNotSupported},
		{Ref{Registry, "Bad/Name"}, "v2", ErrInvalidReference},
	} {
		got, err := tc.ref.WithTag(tc.tag)
		if !errors.Is(err, tc.want) {
			t.Errorf("%#v.WithTag(%q) = %#v, %v; want %v", tc.ref, tc.tag, got, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.ref.Display()) {
			t.Errorf("%#v.WithTag(%q) error %q does not name the reference", tc.ref, tc.tag, err)
		}
	}
}

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b Ref
		want bool
	}{
		{Ref{Registry, "busybox"}, Ref{Registry, "docker.io/library/busybox:latest"}, true},
		{Ref{Registry, "busybox"}, Ref{"docker", "index.docker.io/library/busybox"}, true},
		{Ref{Registry, "quay.io/a/b"}, Ref{Registry, "quay.io/a/b:latest"}, true},
		{Ref{Registry, "quay.io/a/b:1"}, Ref{Registry, "quay.io/a/b:2"}, false},
		{Ref{Registry, "quay.io/a/b:1@" + dgst}, Ref{Registry, "quay.io/a/b@" + dgst}, false},
		{Ref{Registry, "localhost/x"}, Ref{ContainersStorage, "localhost/x"}, false},
		{Ref{ContainersStorage, "localhost/x"}, Ref{ContainersStorage, "localhost/x:latest"}, true},
		{Ref{OCI, "/var/mnt/osupdate/"}, Ref{OCI, "/var/mnt/osupdate"}, true},
		// An oci layout without a name means "its only image", which need not be the one named latest.
		{Ref{OCI, "/var/mnt/osupdate:latest"}, Ref{OCI, "/var/mnt/osupdate"}, false},
		{Ref{OCI, "/p"}, Ref{OCIArchive, "/p"}, false},
		{Ref{Dir, "/a/./b"}, Ref{Dir, "/a/b"}, true},
		{Ref{DockerArchive, "/p.tar:busybox"}, Ref{DockerArchive, "/p.tar:docker.io/library/busybox:latest"}, true},
	} {
		if got := tc.a.Equal(tc.b); got != tc.want {
			t.Errorf("%#v.Equal(%#v) = %v; want %v", tc.a, tc.b, got, tc.want)
		}
		if got := tc.b.Equal(tc.a); got != tc.want {
			t.Errorf("%#v.Equal(%#v) = %v; want %v (symmetry)", tc.b, tc.a, got, tc.want)
		}
	}
}

func TestForFetch(t *testing.T) {
	for _, tc := range []struct{ in, want Ref }{
		{Ref{Registry, "quay.io/a/b:1@" + dgst}, Ref{Registry, "quay.io/a/b@" + dgst}},
		{Ref{Registry, "busybox:1@" + dgst}, Ref{Registry, "busybox@" + dgst}},
		{Ref{Registry, "quay.io/a/b:1"}, Ref{Registry, "quay.io/a/b:1"}},
		{Ref{Registry, "quay.io/a/b@" + dgst}, Ref{Registry, "quay.io/a/b@" + dgst}},
		{Ref{ContainersStorage, "localhost/x:1@" + dgst}, Ref{ContainersStorage, "localhost/x:1@" + dgst}},
		{Ref{OCI, "/p:1"}, Ref{OCI, "/p:1"}},
	} {
		if got := tc.in.ForFetch(); got != tc.want {
			t.Errorf("%#v.ForFetch() = %#v; want %#v", tc.in, got, tc.want)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := (Ref{}).Validate(); !errors.Is(err, ErrUnknownTransport) {
		t.Errorf("zero Ref Validate() = %v; want ErrUnknownTransport", err)
	}
	if err := (Ref{Transport: "ftp", Image: "/x"}).Validate(); !errors.Is(err, ErrUnknownTransport) {
		t.Errorf("Validate() with transport ftp = %v", err)
	}
	if err := (Ref{Transport: "docker", Image: "busybox"}).Validate(); err != nil {
		t.Errorf("Validate() with transport docker = %v", err)
	}
	if got := (Ref{Transport: Registry, Image: "Bad Name"}).Canonical(); got != "Bad Name" {
		t.Errorf("Canonical() of an invalid ref = %q; want the image unchanged", got)
	}
}

// The status document spells a reference {"image": ..., "transport": ...}.
func TestJSON(t *testing.T) {
	var r Ref
	if err := json.Unmarshal([]byte(`{"image":"/var/mnt/osupdate","transport":"oci"}`), &r); err != nil {
		t.Fatal(err)
	}
	if r != (Ref{OCI, "/var/mnt/osupdate"}) {
		t.Fatalf("decoded %#v", r)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(Ref{Registry, "quay.io/a/b:1"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(out), `{"transport":"registry","image":"quay.io/a/b:1"}`; got != want {
		t.Errorf("json = %s; want %s", got, want)
	}
}
