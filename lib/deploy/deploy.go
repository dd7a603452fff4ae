// Package deploy builds deployment roots from fetched images: the composed tree, its mount
// points, its kernel in /boot, its kernel arguments and its record.
//
// Build's step order, each step undone on failure: remove what an interrupted build left;
// compose into deploy/<stateroot>/.<id>.tmp; move the image's /etc to usr/etc and add the
// mount points; find the kernel; reconcile the kernel arguments; check that the /etc merge
// finalize will do can succeed; install the boot files; sync and rename the tree to its id;
// write the record. A crash leaves a .tmp tree (removed by the next build) or, between the
// rename and the record, a tree without record (removed by gc); never a record without a tree.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/durable"
	"gobootc.dev/lib/etcmerge"
	"gobootc.dev/lib/kargs"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/store"
)

// Errors callers test with errors.Is.
var (
	// ErrNotFetched: the image has no complete record under images/.
	ErrNotFetched = errors.New("image has not been fetched")
	// ErrNoKernel: the image has no /usr/lib/modules/<version>/ with vmlinuz and initramfs.img.
	ErrNoKernel = errors.New("image has no kernel")
	// ErrManyKernels: the image has more than one kernel, so which one boots is ambiguous.
	ErrManyKernels = errors.New("image has more than one kernel")
	// ErrBadImageTree: the image's tree cannot become a deployment (e.g. both /etc and /usr/etc).
	ErrBadImageTree = errors.New("image tree unusable as a deployment")
)

// Options describe one deployment to build.
type Options struct {
	Root      layout.Root
	Store     *store.Store
	Stateroot string
	// Image is the manifest digest of a fetched image ("sha256:…").
	Image string
	// Merge is the deployment the new one follows (the booted one): its kernel arguments are
	// carried over and its /etc is checked for merge conflicts. Nil for a first deployment.
	Merge *record.Deployment
	// Kargs are extra kernel arguments, one per element (as --karg gives them). Without a merge
	// deployment they are the whole starting command line; with one they are appended when
	// not already present.
	Kargs []string
	// Arch selects kargs.d entries (x86_64, aarch64, …); empty means the image's architecture,
	// or this machine's when the image names none.
	Arch string
	// Now stamps the record; nil means time.Now.
	Now func() time.Time
}

var idRe = regexp.MustCompile(`^[0-9a-f]{12}\.([0-9]+)$`)

// IsID reports whether name has the shape of a deployment id Build allocates
// (<12 hex digits>.<serial>).
func IsID(name string) bool { return idRe.MatchString(name) }

// tmpName is where a deployment is built before it gets its id.
func tmpName(id string) string { return "." + id + ".tmp" }

// IsTemp reports whether name is an interrupted build (or boot file copy) left behind.
func IsTemp(name string) bool { return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") }

// NextID allocates the id of a new deployment of image in stateroot: the first 12 hex digits
// of the manifest digest and one more than the highest serial any deployment, tree or state
// directory of the stateroot already uses with that prefix.
func NextID(r layout.Root, stateroot, image string) (string, error) {
	d, err := digest.Parse(image)
	if err != nil || d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("allocating deployment id: image digest %q is not a sha256 digest", image)
	}
	prefix := d.Encoded()[:12]
	next := 0
	for _, dir := range []string{r.Deploy(stateroot), r.State(stateroot)} {
		ents, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("allocating deployment id: %w", err)
		}
		for _, e := range ents {
			name := strings.TrimSuffix(e.Name(), ".json")
			if IsTemp(name) {
				name = strings.TrimSuffix(strings.TrimPrefix(name, "."), ".tmp")
			}
			m := idRe.FindStringSubmatch(name)
			if m == nil || !strings.HasPrefix(name, prefix+".") {
				continue
			}
			if n, err := strconv.Atoi(m[1]); err == nil && n >= next {
				next = n + 1
			}
		}
	}
	return fmt.Sprintf("%s.%d", prefix, next), nil
}

// CleanTemp removes the trees interrupted builds left in the stateroot's deploy directory and
// the copies of boot files interrupted in /boot.
func CleanTemp(r layout.Root, stateroot string) error {
	for _, dir := range []string{r.Deploy(stateroot), r.BootFilesRoot()} {
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("removing interrupted builds: %w", err)
		}
		for _, e := range ents {
			if IsTemp(e.Name()) {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return fmt.Errorf("removing interrupted build: %w", err)
				}
			}
		}
	}
	return nil
}

// Build makes a new deployment of a fetched image and writes its record. It does not stage
// it: that is the caller's choice (stage writes the staged record, install a boot entry).
// The caller holds the writer lock.
func Build(ctx context.Context, opts Options) (*record.Deployment, error) {
	img, layers, err := readImage(opts)
	if err != nil {
		return nil, err
	}
	id, tmp, err := startTree(opts.Root, opts.Stateroot, img.ManifestDigest)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	k, line, err := fillTree(ctx, opts, img, layers, id, tmp)
	if err != nil {
		return nil, err
	}
	d, err := publishDeployment(opts, img, id, tmp, k, line)
	if err != nil {
		return nil, err
	}
	ok = true
	return d, nil
}

// readImage reads the fetched image's record and checks that its layers are all stored.
func readImage(opts Options) (record.Image, []digest.Digest, error) {
	r := opts.Root
	if err := layout.CheckName("stateroot", opts.Stateroot); err != nil {
		return record.Image{}, nil, err
	}
	fetched, err := record.ReadFetchedImage(r, opts.Image)
	if errors.Is(err, record.ErrNotFound) {
		return record.Image{}, nil, fmt.Errorf("building deployment of %s: %w (no %s)", opts.Image, ErrNotFetched, r.ImageRecord(opts.Image))
	}
	if err != nil {
		return record.Image{}, nil, fmt.Errorf("building deployment: %w", err)
	}
	layers, err := imageLayers(opts.Store, fetched.Image)
	if err != nil {
		return record.Image{}, nil, err
	}
	return fetched.Image, layers, nil
}

// startTree removes what interrupted builds left, allocates the new deployment's id and makes
// the directory its tree is built in.
func startTree(r layout.Root, stateroot, image string) (id, tmp string, err error) {
	if err := CleanTemp(r, stateroot); err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(r.Deploy(stateroot), 0o700); err != nil {
		return "", "", fmt.Errorf("building deployment: %w", err)
	}
	if id, err = NextID(r, stateroot, image); err != nil {
		return "", "", err
	}
	tmp = filepath.Join(r.Deploy(stateroot), tmpName(id))
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return "", "", fmt.Errorf("building deployment: %w", err)
	}
	return id, tmp, nil
}

// fillTree composes the image's layers into tmp and makes the tree a deployment: usr/etc and
// the mount points, its kernel and its command line; then checks that the /etc merge
// finalize will do can succeed.
func fillTree(ctx context.Context, opts Options, img record.Image, layers []digest.Digest, id, tmp string) (Kernel, string, error) {
	if err := opts.Store.Compose(ctx, layers, tmp); err != nil {
		return Kernel{}, "", fmt.Errorf("building deployment %s: %w", id, err)
	}
	if err := fixTree(tmp); err != nil {
		return Kernel{}, "", fmt.Errorf("building deployment %s: %w", id, err)
	}
	k, err := FindKernel(tmp)
	if err != nil {
		return Kernel{}, "", fmt.Errorf("building deployment %s: %w", id, err)
	}
	line, err := reconcileKargs(opts, img, tmp)
	if err != nil {
		return Kernel{}, "", fmt.Errorf("building deployment %s: %w", id, err)
	}
	if opts.Merge != nil {
		if err := CheckEtc(opts.Root, opts.Merge, tmp); err != nil {
			return Kernel{}, "", err
		}
	}
	return k, line, nil
}

// publishDeployment installs the boot files, renames the tree tmp to its id and writes the
// record, undoing the earlier of these steps when a later one fails.
func publishDeployment(opts Options, img record.Image, id, tmp string, k Kernel, line string) (*record.Deployment, error) {
	r := opts.Root
	final := r.Deployment(opts.Stateroot, id)
	bootDigest, created, err := InstallBootFiles(r, k)
	if err != nil {
		return nil, fmt.Errorf("building deployment %s: %w", id, err)
	}
	undoBoot := func() {
		if created {
			os.RemoveAll(r.BootFiles(bootDigest))
		}
	}
	if err := publish(tmp, final); err != nil {
		undoBoot()
		return nil, fmt.Errorf("building deployment %s: %w", id, err)
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	d := &record.Deployment{
		Stateroot:  opts.Stateroot,
		ID:         id,
		Image:      img,
		Kernel:     k.Version,
		BootDigest: bootDigest,
		Kargs:      line,
		Created:    now().UTC(),
	}
	if err := record.WriteDeployment(r, d); err != nil {
		os.RemoveAll(final)
		undoBoot()
		return nil, fmt.Errorf("building deployment %s: %w", id, err)
	}
	return d, nil
}

// imageLayers checks that every layer of the image is complete in the store before anything
// is built, so a half-fetched image fails with a message that says so.
func imageLayers(s *store.Store, img record.Image) ([]digest.Digest, error) {
	if len(img.Layers) == 0 {
		return nil, fmt.Errorf("building deployment of %s: image record lists no layers", img.ManifestDigest)
	}
	out := make([]digest.Digest, 0, len(img.Layers))
	for _, l := range img.Layers {
		d, err := digest.Parse(l)
		if err != nil {
			return nil, fmt.Errorf("building deployment of %s: layer %q: %w", img.ManifestDigest, l, err)
		}
		has, err := s.HasLayer(d)
		if err != nil {
			return nil, fmt.Errorf("building deployment of %s: %w", img.ManifestDigest, err)
		}
		if !has {
			return nil, fmt.Errorf("building deployment of %s: layer %s: %w (fetch the image again)", img.ManifestDigest, l, store.ErrLayerNotFound)
		}
		out = append(out, d)
	}
	return out, nil
}

// publish makes the built tree durable and gives it its name.
func publish(tmp, final string) error {
	if err := durable.SyncFS(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("publishing deployment: %w", err)
	}
	return durable.Sync(filepath.Dir(final))
}

// reconcileKargs computes the new deployment's command line, without the argument naming the
// deployment (the boot entry writer adds it).
func reconcileKargs(opts Options, img record.Image, newRoot string) (string, error) {
	extra, err := cmdline.FromArgs(opts.Kargs)
	if err != nil {
		return "", fmt.Errorf("kernel argument: %w", err)
	}
	if extra.Has(layout.DeploymentKarg) {
		return "", fmt.Errorf("kernel argument %s is set by bootc itself and cannot be given", layout.DeploymentKarg)
	}
	arch := opts.Arch
	if arch == "" {
		// Images name Go/OCI architectures (amd64); kargs.d uses its own names (x86_64).
		if arch, err = kargs.ArchFromGOARCH(img.Architecture); err != nil {
			if arch, err = kargs.HostArch(); err != nil {
				return "", err
			}
		}
	}
	newSet, err := kargs.Load(newRoot, arch)
	if err != nil {
		return "", err
	}
	current, oldSet := extra, kargs.Set{}
	if opts.Merge != nil {
		if current, err = cmdline.Parse(opts.Merge.Kargs); err != nil {
			return "", fmt.Errorf("kernel arguments of deployment %s: %w", opts.Merge.ID, err)
		}
		oldRoot := opts.Root.Deployment(opts.Merge.Stateroot, opts.Merge.ID)
		if _, err := os.Stat(oldRoot); err != nil {
			return "", fmt.Errorf("reading kargs.d of deployment %s: %w", opts.Merge.ID, err)
		}
		if oldSet, err = kargs.Load(oldRoot, arch); err != nil {
			return "", err
		}
	}
	out, err := kargs.Reconcile(current, oldSet, newSet)
	if err != nil {
		return "", err
	}
	out.Remove(layout.DeploymentKarg)
	for _, a := range extra.Args() {
		if !out.Contains(a) {
			if err := out.Append(a); err != nil {
				return "", fmt.Errorf("kernel argument %s: %w", a, err)
			}
		}
	}
	return out.String(), nil
}

// CheckEtc refuses a deployment whose /etc finalize could not merge with the merge
// deployment's live /etc. Finalize runs at shutdown, where a failure only delays the update
// to an unattended boot; finding the conflict now lets the user fix it first.
func CheckEtc(r layout.Root, merge *record.Deployment, newRoot string) error {
	pristine := r.PristineEtc(merge.Stateroot, merge.ID)
	current := r.Etc(merge.Stateroot, merge.ID)
	plan, err := etcmerge.Plan(pristine, current, layout.ImageEtc(newRoot))
	if err != nil {
		return fmt.Errorf("checking the /etc merge: %w", err)
	}
	if len(plan.Conflicts) > 0 {
		return fmt.Errorf("the local /etc of deployment %s cannot be merged with the new image: %w",
			merge.ID, &etcmerge.ConflictError{Conflicts: plan.Conflicts})
	}
	return nil
}
