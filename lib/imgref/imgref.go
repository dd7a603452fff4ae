// Package imgref parses, validates and renders container image references the way bootc records them:
// a transport plus an image string.
//
// Two spellings exist. The status document and the CLI keep them apart ({transport: oci, image:
// /var/mnt/osupdate:latest}); skopeo and containers/image glue them together ("oci:/var/mnt/osupdate:latest",
// "docker://quay.io/a/b:1"). Ref holds the first form and converts to and from the second.
//
// Paths (oci, oci-archive, dir, docker-archive) must be absolute. containers/image accepts relative paths
// and resolves them against the working directory of whoever opens the image; a reference is recorded in
// the deployment and reused later by timers and services running from "/", so a relative path would
// silently name another directory. Resolve turns a path relative to a given directory into an absolute
// one for callers (the CLI) that want to accept them.
package imgref

import (
	// Digest validation needs the hash functions linked in; without them every sha256/sha512 digest is
	// rejected as an unsupported algorithm.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
)

// Transport names where an image comes from.
type Transport string

// The transports bootc accepts. The string values are the ones written to the status document and
// accepted by --transport.
const (
	Registry          Transport = "registry" // containers/image calls it "docker"
	OCI               Transport = "oci"
	OCIArchive        Transport = "oci-archive"
	ContainersStorage Transport = "containers-storage"
	Dir               Transport = "dir"
	DockerArchive     Transport = "docker-archive"
)

var (
	// ErrUnknownTransport is returned for a transport name outside Transports().
	ErrUnknownTransport = errors.New("unknown transport")
	// ErrInvalidReference is returned (wrapped) for any malformed image string.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrInvalidTag is returned by WithTag for a tag the transport cannot carry.
	ErrInvalidTag = errors.New("invalid tag")
	// ErrTagNotSupported is returned by WithTag for transports without tags (dir, docker-archive).
	ErrTagNotSupported = errors.New("transport does not support replacing the tag")
)

var allTransports = []Transport{Registry, OCI, OCIArchive, ContainersStorage, Dir, DockerArchive}

// Transports lists the valid transports in the order they are documented.
func Transports() []Transport {
	return append([]Transport(nil), allTransports...)
}

// ParseTransport accepts a transport name as given to --transport or found in the status document.
// "docker" is accepted as an alias of registry because that is the containers/image name.
func ParseTransport(name string) (Transport, error) {
	if name == "docker" {
		return Registry, nil
	}
	for _, t := range allTransports {
		if string(t) == name {
			return t, nil
		}
	}
	return "", unknownTransport(name)
}

func unknownTransport(name string) error {
	valid := make([]string, len(allTransports))
	for i, t := range allTransports {
		valid[i] = string(t)
	}
	return fmt.Errorf("%w %q (valid: %s)", ErrUnknownTransport, name, strings.Join(valid, ", "))
}

// String returns the name used in the status document.
func (t Transport) String() string { return string(t) }

// ContainersImageName returns the transport prefix containers/image and skopeo use.
func (t Transport) ContainersImageName() string {
	if t == Registry {
		return "docker"
	}
	return string(t)
}

// Ref is an image source: a transport and the transport-specific image string, kept as the user wrote it
// (Canonical gives the normalized form).
type Ref struct {
	Transport Transport `json:"transport"`
	Image     string    `json:"image"`
}

// invalidError names the reference and the reason in one line and matches ErrInvalidReference.
type invalidError struct {
	transport Transport
	image     string
	reason    string
}

func (e *invalidError) Error() string {
	return fmt.Sprintf("invalid %s image reference %q: %s", e.transport, e.image, e.reason)
}

func (e *invalidError) Is(target error) bool { return target == ErrInvalidReference }

func invalid(t Transport, image, format string, args ...any) error {
	return &invalidError{transport: t, image: image, reason: fmt.Sprintf(format, args...)}
}

// Parse validates image for the named transport; an empty transport means registry, the CLI default.
// The returned Ref keeps image verbatim and the transport normalized ("docker" becomes registry).
func Parse(transport, image string) (Ref, error) {
	t := Registry
	if transport != "" {
		var err error
		if t, err = ParseTransport(transport); err != nil {
			return Ref{}, err
		}
	}
	r := Ref{Transport: t, Image: image}
	if err := r.Validate(); err != nil {
		return Ref{}, err
	}
	return r, nil
}

// Resolve is Parse for user input: for path transports a relative path is taken relative to dir (which
// must be absolute), so the recorded reference keeps naming the same file later.
func Resolve(transport, image, dir string) (Ref, error) {
	t := Registry
	if transport != "" {
		var err error
		if t, err = ParseTransport(transport); err != nil {
			return Ref{}, err
		}
	}
	if t.hasPath() {
		path, rest, hasRest := strings.Cut(image, ":")
		if path != "" && !filepath.IsAbs(path) {
			if !filepath.IsAbs(dir) {
				return Ref{}, fmt.Errorf("resolving %s: base directory %q is not absolute", image, dir)
			}
			path = filepath.Join(dir, path)
			image = path
			if hasRest {
				image += ":" + rest
			}
		}
	}
	return Parse(string(t), image)
}

func (t Transport) hasPath() bool {
	switch t {
	case OCI, OCIArchive, Dir, DockerArchive:
		return true
	}
	return false
}

// ParseTransportString parses the containers/image (skopeo) spelling: "docker://quay.io/a/b:1",
// "oci:/path[:name]", "oci-archive:/p.tar[:name]", "containers-storage:localhost/x", "dir:/p",
// "docker-archive:/p.tar[:ref]". "registry:quay.io/a/b" (bootc's own spelling) and a bare
// "quay.io/a/b:1" mean the registry. A known transport prefix wins over a registry host of the same
// name, as in containers/image: "oci:5000/x" is an oci path, not the host "oci" on port 5000.
func ParseTransportString(s string) (Ref, error) {
	prefix, rest, found := strings.Cut(s, ":")
	if !found {
		return Parse(string(Registry), s)
	}
	switch prefix {
	case "docker":
		name, ok := strings.CutPrefix(rest, "//")
		if !ok {
			return Ref{}, invalid(Registry, s, "the docker transport is spelled docker://NAME")
		}
		return Parse(string(Registry), name)
	case string(Registry):
		return Parse(string(Registry), rest)
	}
	for _, t := range allTransports {
		if prefix == string(t) {
			return Parse(string(t), rest)
		}
	}
	if _, err := parseName(Registry, s); err == nil {
		return Ref{Transport: Registry, Image: s}, nil
	}
	if transportLike.MatchString(prefix) {
		return Ref{}, unknownTransport(prefix)
	}
	return Parse(string(Registry), s)
}

// transportLike tells an unknown transport ("docker-daemon:x") from a malformed registry name; it never
// matches a host with a dot or a path with a slash.
var transportLike = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// TransportString renders the containers/image spelling, the inverse of ParseTransportString.
func (r Ref) TransportString() string {
	if r.Transport == Registry || r.Transport == "" {
		return "docker://" + r.Image
	}
	return string(r.Transport) + ":" + r.Image
}

// Display is what status prints: the bare image for the registry, transport:image otherwise.
func (r Ref) Display() string {
	if r.Transport == Registry || r.Transport == "" {
		return r.Image
	}
	return string(r.Transport) + ":" + r.Image
}

// String is Display, so references read the same in logs as in status.
func (r Ref) String() string { return r.Display() }

// Validate checks a Ref built by hand or decoded from a document.
func (r Ref) Validate() error {
	if r.Transport == "" {
		return fmt.Errorf("validating image %q: %w", r.Image, unknownTransport(""))
	}
	switch r.normalTransport() {
	case Registry:
		_, err := parseName(Registry, r.Image)
		return err
	case ContainersStorage:
		_, err := parseStorage(r.Image)
		return err
	case OCI, OCIArchive:
		_, _, err := parseLayout(r.Transport, r.Image)
		return err
	case Dir:
		return checkPath(Dir, r.Image, r.Image)
	case DockerArchive:
		_, _, err := parseDockerArchive(r.Image)
		return err
	}
	return unknownTransport(string(r.Transport))
}

// Canonical is the normalized image string: for registry and containers-storage names the fully
// qualified form containers/image resolves to (docker.io/library/ added, ":latest" when neither tag nor
// digest is given); for paths the cleaned path. "name:tag@digest" keeps both parts: fetches then go by
// digest alone and the tag only documents where the digest came from (see ForFetch). An invalid Ref
// yields its Image unchanged.
func (r Ref) Canonical() string {
	switch r.normalTransport() {
	case Registry:
		if named, err := parseName(Registry, r.Image); err == nil {
			return reference.TagNameOnly(named).String()
		}
	case ContainersStorage:
		if s, err := parseStorage(r.Image); err == nil {
			return s.canonical()
		}
	case OCI, OCIArchive:
		if path, name, err := parseLayout(r.Transport, r.Image); err == nil {
			if name == "" {
				return filepath.Clean(path)
			}
			return filepath.Clean(path) + ":" + name
		}
	case Dir:
		if checkPath(Dir, r.Image, r.Image) == nil {
			return filepath.Clean(r.Image)
		}
	case DockerArchive:
		if path, ref, err := parseDockerArchive(r.Image); err == nil {
			if ref == "" {
				return filepath.Clean(path)
			}
			return filepath.Clean(path) + ":" + ref
		}
	}
	return r.Image
}

// Equal reports whether two refs name the same image source: same transport and same canonical form.
func (r Ref) Equal(o Ref) bool {
	return r.normalTransport() == o.normalTransport() && r.Canonical() == o.Canonical()
}

func (r Ref) normalTransport() Transport {
	if r.Transport == "" || r.Transport == "docker" {
		return Registry
	}
	return r.Transport
}

// Tag returns the tag of a registry or containers-storage reference, or the image name after an oci or
// oci-archive path; "" when there is none (for registry names Canonical shows the implied ":latest").
func (r Ref) Tag() string {
	switch r.normalTransport() {
	case Registry:
		if named, err := parseName(Registry, r.Image); err == nil {
			if t, ok := named.(reference.Tagged); ok {
				return t.Tag()
			}
		}
	case ContainersStorage:
		if s, err := parseStorage(r.Image); err == nil && s.named != nil {
			if t, ok := s.named.(reference.Tagged); ok {
				return t.Tag()
			}
		}
	case OCI, OCIArchive:
		// "@N" selects by position in the layout, it is not a name.
		if _, name, err := parseLayout(r.Transport, r.Image); err == nil && !strings.HasPrefix(name, "@") {
			return name
		}
	}
	return ""
}

// Digest returns the manifest digest a registry or containers-storage reference is pinned to, or "".
func (r Ref) Digest() digest.Digest {
	var named reference.Named
	switch r.normalTransport() {
	case Registry:
		named, _ = parseName(Registry, r.Image)
	case ContainersStorage:
		if s, err := parseStorage(r.Image); err == nil {
			named = s.named
		}
	}
	if d, ok := named.(reference.Digested); ok {
		return d.Digest()
	}
	return ""
}

// ForFetch returns the reference to hand to containers/image: a registry "name:tag@digest" becomes
// "name@digest", because containers/image refuses references carrying both and the digest decides
// what is pulled anyway. Other refs are returned unchanged.
func (r Ref) ForFetch() Ref {
	if r.normalTransport() != Registry {
		return r
	}
	named, err := reference.ParseNormalizedNamed(r.Image)
	if err != nil {
		return r
	}
	_, tagged := named.(reference.Tagged)
	d, digested := named.(reference.Digested)
	if !tagged || !digested {
		return r
	}
	// Strip the tag textually so a familiar name ("busybox") stays familiar.
	parsed, err := reference.Parse(r.Image)
	if err != nil {
		return r
	}
	return Ref{Transport: Registry, Image: parsed.(reference.Named).Name() + "@" + d.Digest().String()}
}

// WithTag replaces the tag: for registry and containers-storage names any digest (and storage image ID)
// is dropped, since it would pin the old tag's image; for oci and oci-archive the name after the path
// is replaced. The name keeps the spelling the user chose ("busybox:1" becomes "busybox:2").
func (r Ref) WithTag(tag string) (Ref, error) {
	fail := func(err error) (Ref, error) {
		return Ref{}, fmt.Errorf("setting tag %q on %s: %w", tag, r.Display(), err)
	}
	if err := r.Validate(); err != nil {
		return fail(err)
	}
	switch r.normalTransport() {
	case Registry:
		if !dockerTag.MatchString(tag) {
			return fail(fmt.Errorf("%w: %s", ErrInvalidTag, dockerTagRule))
		}
		parsed, err := reference.Parse(r.Image)
		if err != nil {
			return fail(err)
		}
		return Ref{Transport: Registry, Image: parsed.(reference.Named).Name() + ":" + tag}, nil
	case ContainersStorage:
		if !dockerTag.MatchString(tag) {
			return fail(fmt.Errorf("%w: %s", ErrInvalidTag, dockerTagRule))
		}
		s, err := parseStorage(r.Image)
		if err != nil {
			return fail(err)
		}
		if s.name == "" {
			return fail(fmt.Errorf("%w: the reference is a bare image ID", ErrTagNotSupported))
		}
		parsed, err := reference.Parse(s.name)
		if err != nil {
			return fail(err)
		}
		return Ref{Transport: ContainersStorage, Image: s.store + parsed.(reference.Named).Name() + ":" + tag}, nil
	case OCI, OCIArchive:
		if !ociRefName.MatchString(tag) {
			return fail(fmt.Errorf("%w: %s", ErrInvalidTag, ociRefNameRule))
		}
		path, _, _ := strings.Cut(r.Image, ":")
		return Ref{Transport: r.Transport, Image: path + ":" + tag}, nil
	}
	return fail(fmt.Errorf("%w (%s)", ErrTagNotSupported, r.Transport))
}

// dockerTag is the tag grammar of the distribution reference format.
var dockerTag = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

const dockerTagRule = "use 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'"

// ociRefName is the grammar of org.opencontainers.image.ref.name, the name that selects an image inside
// an OCI layout: alphanumeric components joined by one of - . _ : @ + or "--", with '/' between groups.
var ociRefName = regexp.MustCompile(`^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$`)

const ociRefNameRule = "use alphanumeric parts joined by one of - . _ : @ + / (e.g. latest, v1.2, stable/x86_64)"

// parseName validates a registry-style name ([host[:port]/]path[:tag][@digest]) and explains what is
// wrong in terms of the part that is wrong, which the reference library's "invalid reference format"
// does not.
func parseName(t Transport, s string) (reference.Named, error) {
	if s == "" {
		return nil, invalid(t, s, "empty name")
	}
	if strings.IndexFunc(s, isSpaceOrControl) >= 0 {
		return nil, invalid(t, s, "contains whitespace or control characters")
	}
	if strings.Contains(s, "://") {
		return nil, invalid(t, s, "looks like a URL; give the transport separately (or use docker://NAME)")
	}
	name, dig, hasDigest := strings.Cut(s, "@")
	if hasDigest {
		switch {
		case dig == "":
			return nil, invalid(t, s, "empty digest after '@'")
		case strings.Contains(dig, "@"):
			return nil, invalid(t, s, "more than one '@'")
		}
		if err := digest.Digest(dig).Validate(); err != nil {
			return nil, invalid(t, s, "bad digest %q: %v (expected e.g. sha256:<64 hex digits>)", dig, err)
		}
	}
	if name == "" {
		return nil, invalid(t, s, "missing repository name before '@'")
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		tag := name[i+1:]
		if tag == "" {
			return nil, invalid(t, s, "empty tag after ':'")
		}
		if !dockerTag.MatchString(tag) {
			return nil, invalid(t, s, "bad tag %q: %s", tag, dockerTagRule)
		}
		name = name[:i]
	}
	if isImageID(name) {
		return nil, invalid(t, s, "64 hex digits is an image ID, not a repository name")
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		switch {
		case strings.Contains(err.Error(), "must be lowercase"):
			return nil, invalid(t, s, "repository name %q must be lowercase", repoPath(name))
		case errors.Is(err, reference.ErrNameTooLong):
			return nil, invalid(t, s, "%v", err)
		}
		return nil, invalid(t, s, "not a valid name (expected [host[:port]/]path[:tag][@digest], path components lowercase [a-z0-9] joined by . _ __ or -)")
	}
	return named, nil
}

// repoPath drops a leading registry host so the lowercase complaint names the part that must change.
func repoPath(name string) string {
	host, rest, ok := strings.Cut(name, "/")
	if ok && (strings.ContainsAny(host, ".:") || host == "localhost") {
		return rest
	}
	return name
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}

var imageIDPattern = regexp.MustCompile(`^[a-f0-9]{64}$`)

func isImageID(s string) bool { return imageIDPattern.MatchString(s) }

// storageRef is a containers-storage reference: "[driver@graphroot+runroot:opts]name[@imageID]", where
// the store prefix is optional and either the name or the ID may be missing (not both).
type storageRef struct {
	store string // "[...]" verbatim, or ""
	name  string // as written, possibly with tag and/or digest
	id    string // 64 hex digits, or ""
	named reference.Named
}

func parseStorage(s string) (storageRef, error) {
	var ref storageRef
	rest := s
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return ref, invalid(ContainersStorage, s, "store specifier starting with '[' has no closing ']'")
		}
		if end == 1 {
			return ref, invalid(ContainersStorage, s, "empty store specifier \"[]\"")
		}
		ref.store, rest = rest[:end+1], rest[end+1:]
	}
	if rest == "" {
		return ref, invalid(ContainersStorage, s, "empty name")
	}
	// A trailing "@<64 hex>" is an image ID; "@sha256:<hex>" is a digest and stays part of the name.
	if i := strings.LastIndex(rest, "@"); i >= 0 && isImageID(rest[i+1:]) {
		ref.id, rest = rest[i+1:], rest[:i]
	} else if isImageID(rest) {
		ref.id, rest = rest, ""
	}
	ref.name = rest
	if rest != "" {
		named, err := parseName(ContainersStorage, rest)
		if err != nil {
			var ie *invalidError
			if errors.As(err, &ie) {
				return ref, invalid(ContainersStorage, s, "%s", ie.reason)
			}
			return ref, err
		}
		ref.named = named
	}
	return ref, nil
}

func (s storageRef) canonical() string {
	out := s.store
	if s.named != nil {
		out += reference.TagNameOnly(s.named).String()
	}
	if s.id != "" {
		if s.named != nil {
			out += "@"
		}
		out += s.id
	}
	return out
}

// checkPath enforces what a recorded path must be: non-empty, absolute, free of ':' (the separator
// containers/image splits on) and of control characters.
func checkPath(t Transport, image, path string) error {
	switch {
	case path == "":
		return invalid(t, image, "empty path")
	case strings.IndexFunc(path, func(r rune) bool { return r < ' ' || r == 0x7f }) >= 0:
		return invalid(t, image, "path contains control characters")
	case strings.Contains(path, ":"):
		return invalid(t, image, "path contains ':', which containers/image cannot represent")
	case !filepath.IsAbs(path):
		return invalid(t, image, "path %q is relative; give an absolute path, the reference is reused later from another working directory", path)
	}
	return nil
}

// parseLayout splits "path[:name]" for oci and oci-archive; name is an image ref.name or "@N", the
// index of an image in the layout's index.json.
func parseLayout(t Transport, s string) (path, name string, err error) {
	path, name, hasName := strings.Cut(s, ":")
	if err := checkPath(t, s, path); err != nil {
		return "", "", err
	}
	if !hasName {
		return path, "", nil
	}
	switch {
	case name == "":
		return "", "", invalid(t, s, "empty image name after ':' (omit the ':' to use the only image in the layout)")
	case strings.HasPrefix(name, "@"):
		n, err := strconv.Atoi(name[1:])
		if err != nil || n < 0 || name[1:] != strconv.Itoa(n) {
			return "", "", invalid(t, s, "bad image index %q: want @N with N a non-negative integer", name)
		}
	case !ociRefName.MatchString(name):
		return "", "", invalid(t, s, "bad image name %q: %s", name, ociRefNameRule)
	}
	return path, name, nil
}

// parseDockerArchive splits "path[:ref]" where ref is a tagged name (normalized, as containers/image
// stores it) or "@N", the index of an image in the archive; digests are not allowed there.
func parseDockerArchive(s string) (path, ref string, err error) {
	path, ref, hasRef := strings.Cut(s, ":")
	if err := checkPath(DockerArchive, s, path); err != nil {
		return "", "", err
	}
	if !hasRef {
		return path, "", nil
	}
	if ref == "" {
		return "", "", invalid(DockerArchive, s, "empty reference after ':'")
	}
	if strings.HasPrefix(ref, "@") {
		n, err := strconv.Atoi(ref[1:])
		if err != nil || n < 0 || ref[1:] != strconv.Itoa(n) {
			return "", "", invalid(DockerArchive, s, "bad image index %q: want @N with N a non-negative integer", ref)
		}
		return path, ref, nil
	}
	named, err := parseName(DockerArchive, ref)
	if err != nil {
		var ie *invalidError
		if errors.As(err, &ie) {
			return "", "", invalid(DockerArchive, s, "reference %q: %s", ref, ie.reason)
		}
		return "", "", err
	}
	if _, ok := named.(reference.Digested); ok {
		return "", "", invalid(DockerArchive, s, "reference %q has a digest; docker archives only hold tags", ref)
	}
	return path, reference.TagNameOnly(named).String(), nil
}
