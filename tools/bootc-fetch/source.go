package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/pkg/cli/environment"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/transports"
	"go.podman.io/image/v5/types"

	// The transports bootc accepts (see imgref); each registers itself.
	_ "go.podman.io/image/v5/directory"
	_ "go.podman.io/image/v5/docker"
	_ "go.podman.io/image/v5/docker/archive"
	_ "go.podman.io/image/v5/oci/archive"
	_ "go.podman.io/image/v5/oci/layout"
	_ "go.podman.io/image/v5/storage"

	"gobootc.dev/lib/cli"
	"gobootc.dev/lib/host"
	"gobootc.dev/lib/imgref"
	"gobootc.dev/lib/pullsecret"
)

// Errors callers and tests tell apart.
var (
	ErrInsecurePolicy = errors.New("signature policy accepts any image")
	ErrBlobDigest     = errors.New("blob does not match its digest")
	// ErrNoSpace carries the kernel's words ("no space left on device"), which agents look for.
	ErrNoSpace          = fmt.Errorf("insufficient free space (%w)", syscall.ENOSPC)
	ErrNotBootable      = errors.New("not a usable image")
	ErrNothingToFetch   = errors.New("no image to fetch")
	ErrSchema1Unusable  = errors.New("docker schema 1 images are not supported")
	maxConfigSize       = int64(16 << 20)
	maxManifestListSize = 4 << 20
)

// systemContext is the containers/image configuration of one fetch: the pull secret from the
// ostree auth.json search (never a user's podman or docker credentials), and the system
// registries.conf, registries.d and policy.json unless the hidden test flags replace them.
func (c *CLI) systemContext() (*types.SystemContext, error) {
	sys := &types.SystemContext{
		SystemRegistriesConfPath: c.RegistriesConf,
		RegistriesDirPath:        c.RegistriesD,
		SignaturePolicyPath:      c.SignaturePolicy,
		DockerRegistryUserAgent:  cli.UserAgent(),
	}
	// $CONTAINERS_REGISTRIES_CONF names another registries.conf, as for skopeo and podman
	// (bootc-bound-images hands it to podman too); the flag wins.
	if err := environment.UpdateRegistriesConf(sys); err != nil {
		return nil, err
	}
	auth, err := pullsecret.Find(c.Authfile, c.AuthSearch)
	if err != nil {
		return nil, err
	}
	if auth != "" {
		sys.AuthFilePath = auth
	} else {
		// An explicit empty credential makes the pull anonymous: without it containers/image
		// would look in $REGISTRY_AUTH_FILE, ~/.docker and podman's auth files.
		sys.DockerAuthConfig = &types.DockerAuthConfig{}
	}
	return sys, nil
}

// parseReference turns a Ref into a containers/image reference.
func parseReference(ref imgref.Ref) (types.ImageReference, error) {
	name, rest, ok := strings.Cut(ref.ForFetch().TransportString(), ":")
	if !ok {
		return nil, fmt.Errorf("%w: %s", imgref.ErrInvalidReference, ref)
	}
	t := transports.Get(name)
	if t == nil {
		return nil, fmt.Errorf("%w: %s", imgref.ErrUnknownTransport, name)
	}
	r, err := t.ParseReference(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", imgref.ErrInvalidReference, ref, err)
	}
	return r, nil
}

// resolved is the single-platform manifest a reference leads to.
type resolved struct {
	src      types.ImageSource
	raw      []byte
	mime     string
	digest   digest.Digest // of raw: the instance when the reference names a list
	manifest manifest.Manifest
	listed   bool // the reference named a manifest list or image index
	instance *digest.Digest
}

// resolve fetches the manifest, choosing this machine's instance from a list.
func resolve(ctx context.Context, sys *types.SystemContext, src types.ImageSource, pinned digest.Digest) (*resolved, error) {
	raw, mime, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, err
	}
	if pinned != "" {
		if ok, err := manifest.MatchesDigest(raw, pinned); err != nil || !ok {
			return nil, fmt.Errorf("manifest does not match the pinned digest %s", pinned)
		}
	}
	if mime == "" {
		mime = manifest.GuessMIMEType(raw)
	}
	res := &resolved{src: src}
	if manifest.MIMETypeIsMultiImage(mime) {
		if len(raw) > maxManifestListSize {
			return nil, fmt.Errorf("manifest list of %d bytes is too large", len(raw))
		}
		list, err := manifest.ListFromBlob(raw, mime)
		if err != nil {
			return nil, fmt.Errorf("parsing manifest list: %w", err)
		}
		inst, err := list.ChooseInstance(sys)
		if err != nil {
			return nil, fmt.Errorf("choosing from the manifest list: %w", err)
		}
		if raw, mime, err = src.GetManifest(ctx, &inst); err != nil {
			return nil, err
		}
		if ok, err := manifest.MatchesDigest(raw, inst); err != nil || !ok {
			return nil, fmt.Errorf("manifest of instance %s does not match its digest", inst)
		}
		if mime == "" {
			mime = manifest.GuessMIMEType(raw)
		}
		res.listed, res.instance = true, &inst
	}
	if manifest.MIMETypeIsMultiImage(mime) {
		return nil, fmt.Errorf("manifest list nested in a manifest list")
	}
	if res.digest, err = manifest.Digest(raw); err != nil {
		return nil, fmt.Errorf("computing the manifest digest: %w", err)
	}
	if res.manifest, err = manifest.FromBlob(raw, mime); err != nil {
		return nil, fmt.Errorf("parsing manifest: %w", err)
	}
	if res.manifest.ConfigInfo().Digest == "" {
		return nil, ErrSchema1Unusable
	}
	res.raw, res.mime = raw, mime
	return res, nil
}

// layerInfos are the blobs to request for the layers. Most sources serve the manifest's blobs;
// containers-storage keeps layers unpacked and serves them by the digests it substitutes here.
func (r *resolved) layerInfos(ctx context.Context) ([]manifest.LayerInfo, error) {
	layers := r.manifest.LayerInfos()
	upd, err := r.src.LayerInfosForCopy(ctx, r.instance)
	if err != nil {
		return nil, fmt.Errorf("reading layer list: %w", err)
	}
	if upd == nil {
		return layers, nil
	}
	if len(upd) != len(layers) {
		return nil, fmt.Errorf("the source lists %d layers for a manifest of %d", len(upd), len(layers))
	}
	for i := range layers {
		layers[i].BlobInfo = upd[i]
	}
	return layers, nil
}

// verifyPolicy enforces policy.json for the reference (signature mode containerPolicy). A policy
// whose default accepts anything would make "enforced" meaningless, so it is refused outright.
func verifyPolicy(ctx context.Context, sys *types.SystemContext, src types.ImageSource) error {
	policy, err := signature.DefaultPolicy(sys)
	if err != nil {
		return fmt.Errorf("reading signature policy: %w", err)
	}
	for _, req := range policy.Default {
		b, err := json.Marshal(req)
		if err != nil {
			return err
		}
		var t struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(b, &t) == nil && t.Type == "insecureAcceptAnything" {
			return fmt.Errorf("%w: the default of policy.json is insecureAcceptAnything, refusing under --enforce-container-sigpolicy", ErrInsecurePolicy)
		}
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return fmt.Errorf("signature policy: %w", err)
	}
	defer pc.Destroy()
	// The unparsed top-level image: signatures sign what the reference names (a list's digest
	// for a list), and instances are then tied to it by digest in resolve.
	if ok, err := pc.IsRunningImageAllowed(ctx, image.UnparsedInstance(src, nil)); !ok || err != nil {
		if err == nil {
			err = errors.New("rejected")
		}
		return fmt.Errorf("signature verification: %w", err)
	}
	return nil
}

// imageConfig is the part of the OCI image config bootc reads.
type imageConfig struct {
	Architecture string     `json:"architecture"`
	Created      *time.Time `json:"created"`
	Config       struct {
		Labels map[string]string `json:"Labels"`
	} `json:"config"`
	RootFS struct {
		Type    string          `json:"type"`
		DiffIDs []digest.Digest `json:"diff_ids"`
	} `json:"rootfs"`
}

// fetchConfig downloads and verifies the config blob.
func fetchConfig(ctx context.Context, src types.ImageSource, info types.BlobInfo) ([]byte, *imageConfig, error) {
	if info.Size > maxConfigSize {
		return nil, nil, fmt.Errorf("config of %d bytes is too large", info.Size)
	}
	rc, _, err := src.GetBlob(ctx, info, none.NoCache)
	if err != nil {
		return nil, nil, fmt.Errorf("fetching config %s: %w", info.Digest, err)
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, maxConfigSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("fetching config %s: %w", info.Digest, err)
	}
	if err := info.Digest.Validate(); err != nil {
		return nil, nil, fmt.Errorf("config digest: %w", err)
	}
	if info.Digest.Algorithm().FromBytes(raw) != info.Digest {
		return nil, nil, fmt.Errorf("config %s: %w", info.Digest, ErrBlobDigest)
	}
	var cfg imageConfig
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&cfg); err != nil {
		return nil, nil, fmt.Errorf("parsing config %s: %w", info.Digest, err)
	}
	return raw, &cfg, nil
}

// signatureMode is how a reference's signature mode reads in messages.
func signatureMode(s *host.ImageSignature) string {
	if s == nil {
		return "default"
	}
	if s.OstreeRemote != "" {
		return "ostreeRemote " + s.OstreeRemote
	}
	return string(s.Mode)
}
