// Package gc removes what no kept deployment needs: other deployments, fetched images, store
// layers and objects, boot files, and what interrupted builds left behind.
//
// Kept are the booted, rollback, staged and pinned deployments and every deployment a boot
// entry names (removing one of those would leave the boot loader an entry that cannot boot).
// Kept with them: their images, the cached update's image, the images `switch --retain` kept,
// the layers those images list, every object such a layer references or something outside the
// store still links, and the boot files of kept deployments and of every boot entry.
//
// Step order: decide everything first (any error reading the state aborts before anything is
// removed); then remove deployments (record first, so a crash leaves at worst an orphan tree
// that the next run finds), leftovers, images (their image.json first, the mark of a complete
// image), boot files, and finally unreferenced store layers and objects, which only become
// unreferenced once the deployment trees that hardlinked them are gone. The caller holds the
// writer lock.
package gc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"gobootc.dev/lib/bls"
	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/deploy"
	"gobootc.dev/lib/layout"
	"gobootc.dev/lib/record"
	"gobootc.dev/lib/status"
	"gobootc.dev/lib/store"
)

// Options say which root to collect and how.
type Options struct {
	Root layout.Root
	// Cmdline is the kernel command line file consulted when no booted marker exists ("" for
	// the marker only).
	Cmdline string
	// DryRun decides and measures without removing anything.
	DryRun bool
}

// Result is what was (or, in a dry run, would be) removed.
type Result struct {
	DryRun      bool
	Kept        []string // "<stateroot>/<id>" of the kept deployments
	Deployments []string // "<stateroot>/<id>" removed
	Images      []string // manifest digests removed
	BootDirs    []string // boot digests removed
	Leftovers   []string // paths of interrupted builds and orphan directories removed
	Layers      int
	Objects     int
	Bytes       int64 // file bytes freed (files whose last link went)
}

// Empty reports whether nothing was removed.
func (r *Result) Empty() bool {
	return len(r.Deployments)+len(r.Images)+len(r.BootDirs)+len(r.Leftovers)+r.Layers+r.Objects == 0
}

// Summary is the one line reported to the user.
func (r *Result) Summary() string {
	if r.Empty() {
		return "Garbage collection: nothing to remove."
	}
	verb := "removed"
	if r.DryRun {
		verb = "would remove"
	}
	var parts []string
	add := func(n int, one, many string) {
		if n == 1 {
			parts = append(parts, "1 "+one)
		} else if n > 1 {
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(len(r.Deployments), "deployment", "deployments")
	add(len(r.Images), "image", "images")
	add(r.Layers, "layer", "layers")
	add(r.Objects, "object", "objects")
	add(len(r.BootDirs), "boot file set", "boot file sets")
	add(len(r.Leftovers), "leftover", "leftovers")
	return fmt.Sprintf("Garbage collection: %s %s; %s freed.", verb, strings.Join(parts, ", "), formatBytes(r.Bytes))
}

func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// plan is everything decided before the first removal.
type plan struct {
	keepDeps   map[string]bool
	removeDeps []*record.Deployment
	keepImages map[string]bool
	keepLayers []digest.Digest
	keepBoot   map[string]bool // directory names under /boot/bootc
	images     []string        // digests to remove
	bootDirs   []string        // directory names to remove
	leftovers  []string        // paths to remove
}

func key(stateroot, id string) string { return stateroot + "/" + id }

// Run collects garbage on opts.Root. Step order: decide; measure what the removals free;
// then, unless a dry run, remove deployments, leftovers, images and boot files, and collect
// the store.
func Run(ctx context.Context, opts Options) (*Result, error) {
	res := &Result{DryRun: opts.DryRun}
	r := opts.Root
	if !r.IsDeployed() {
		return res, nil
	}
	st, err := store.Open(r.Store())
	if err != nil {
		return nil, fmt.Errorf("collecting garbage: %w", err)
	}
	p, err := decide(opts, st)
	if err != nil {
		return nil, fmt.Errorf("collecting garbage: %w", err)
	}
	t, err := p.measure(r)
	if err != nil {
		return nil, fmt.Errorf("collecting garbage: %w", err)
	}
	p.describe(res)
	res.Bytes = t.freed()

	if opts.DryRun {
		layers, objects, bytes, err := storeGarbage(st, p.keepLayers, t)
		if err != nil {
			return nil, fmt.Errorf("collecting garbage: %w", err)
		}
		res.Layers, res.Objects, res.Bytes = layers, objects, res.Bytes+bytes
		return res, nil
	}
	if err := p.remove(ctx, r); err != nil {
		return res, err
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("collecting garbage: %w", err)
	}
	gs, err := st.GC(p.keepLayers)
	res.Layers, res.Objects = gs.LayersRemoved, gs.ObjectsRemoved
	res.Bytes += gs.BytesFreed
	if err != nil {
		return res, fmt.Errorf("collecting garbage: %w", err)
	}
	return res, nil
}

// measure counts the links in every tree the plan removes, before anything is removed: a
// file's bytes are freed when every link to it is removed.
func (p *plan) measure(r layout.Root) (*tally, error) {
	t := newTally()
	var trees []string
	for _, d := range p.removeDeps {
		trees = append(trees, r.Deployment(d.Stateroot, d.ID), r.DeploymentState(d.Stateroot, d.ID))
	}
	trees = append(trees, p.leftovers...)
	for _, dg := range p.images {
		trees = append(trees, r.Image(dg))
	}
	for _, name := range p.bootDirs {
		trees = append(trees, filepath.Join(r.BootFilesRoot(), name))
	}
	for _, tr := range trees {
		if err := t.walk(tr); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// describe fills res with what the plan keeps and removes outside the store.
func (p *plan) describe(res *Result) {
	for k := range p.keepDeps {
		res.Kept = append(res.Kept, k)
	}
	sort.Strings(res.Kept)
	for _, d := range p.removeDeps {
		res.Deployments = append(res.Deployments, key(d.Stateroot, d.ID))
	}
	res.Images = p.images
	for _, name := range p.bootDirs {
		dg, _ := layout.DirDigest(name) // only digest directories are planned for removal
		res.BootDirs = append(res.BootDirs, dg)
	}
	res.Leftovers = p.leftovers
}

// remove removes, in the package comment's order, everything the plan names outside the
// store: deployments, leftovers, images and boot files.
func (p *plan) remove(ctx context.Context, r layout.Root) error {
	for _, d := range p.removeDeps {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("collecting garbage: %w", err)
		}
		if err := record.Remove(r.DeploymentRecord(d.Stateroot, d.ID)); err != nil {
			return fmt.Errorf("collecting garbage: %w", err)
		}
		if err := removeAll(r.Deployment(d.Stateroot, d.ID), r.DeploymentState(d.Stateroot, d.ID)); err != nil {
			return fmt.Errorf("collecting garbage: deployment %s: %w", key(d.Stateroot, d.ID), err)
		}
	}
	if err := removeAll(p.leftovers...); err != nil {
		return fmt.Errorf("collecting garbage: %w", err)
	}
	for _, dg := range p.images {
		if err := record.Remove(r.ImageRecord(dg)); err != nil {
			return fmt.Errorf("collecting garbage: %w", err)
		}
		if err := removeAll(r.Image(dg)); err != nil {
			return fmt.Errorf("collecting garbage: image %s: %w", dg, err)
		}
	}
	for _, name := range p.bootDirs {
		if err := removeAll(filepath.Join(r.BootFilesRoot(), name)); err != nil {
			return fmt.Errorf("collecting garbage: %w", err)
		}
	}
	return nil
}

func removeAll(paths ...string) error {
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("removing %s: %w", p, err)
		}
	}
	return nil
}

// decide computes what to keep and what to remove, touching nothing. Step order: the kept
// deployments; what they use; the cached updates' images; the images to remove; the layers to
// keep; the boot files to remove; the orphans.
func decide(opts Options, st *store.Store) (*plan, error) {
	r := opts.Root
	p := &plan{keepDeps: map[string]bool{}, keepImages: map[string]bool{}, keepBoot: map[string]bool{}}
	all, byKey, err := p.keepDeployments(opts)
	if err != nil {
		return nil, err
	}
	layers := map[digest.Digest]bool{}
	p.splitDeployments(r, all, layers)
	if err := p.keepStateImages(r); err != nil {
		return nil, err
	}
	if err := p.scanImages(r, layers); err != nil {
		return nil, err
	}
	if err := p.keepPresentLayers(st, layers); err != nil {
		return nil, err
	}
	if err := p.scanBootFiles(r); err != nil {
		return nil, err
	}
	if err := p.orphans(r, byKey); err != nil {
		return nil, err
	}
	sort.Strings(p.images)
	sort.Strings(p.bootDirs)
	sort.Strings(p.leftovers)
	return p, nil
}

// Kept returns the deployments that stay, in record order: the booted, rollback and staged
// ones, every one a boot entry names (removing it would leave the boot loader an entry that
// cannot boot), and the pinned ones. It is the one rule for every collection: of deployments
// here, of bound images in bootc-bound-images. cmdlinePath is the kernel command line file
// consulted when no booted marker exists ("" for the marker only).
func Kept(r layout.Root, cmdlinePath string) ([]*record.Deployment, error) {
	k, err := loadKept(r, cmdlinePath)
	if err != nil {
		return nil, err
	}
	var out []*record.Deployment
	for _, d := range k.all {
		if k.keep[key(d.Stateroot, d.ID)] {
			out = append(out, d)
		}
	}
	return out, nil
}

// kept is what Kept decides, with what a collection needs besides: every recorded deployment,
// in order and by key.
type kept struct {
	keep  map[string]bool
	all   []*record.Deployment
	byKey map[string]*record.Deployment
}

func loadKept(r layout.Root, cmdlinePath string) (*kept, error) {
	k := &kept{keep: map[string]bool{}, byKey: map[string]*record.Deployment{}}
	state, err := status.Load(status.Options{Root: r, Cmdline: cmdlinePath})
	if err != nil {
		return nil, err
	}
	for _, d := range []*status.Deployment{state.Booted, state.Rollback, state.Staged} {
		if d != nil {
			k.keep[key(d.Stateroot, d.ID)] = true
		}
	}
	// status knows the staged deployment only on a booted host; the record alone is enough.
	if s, err := record.ReadStaged(r); err == nil {
		k.keep[key(s.Stateroot, s.ID)] = true
	} else if !errors.Is(err, record.ErrNotFound) {
		return nil, err
	}
	entries, err := readEntries(r)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		c, err := cmdline.Parse(e.Cmdline())
		if err != nil {
			return nil, fmt.Errorf("boot entry %s: %w", e.Name, err)
		}
		for _, v := range c.Get(layout.DeploymentKarg) {
			sr, id, err := layout.ParseDeploymentKarg(v)
			if err != nil {
				return nil, fmt.Errorf("boot entry %s: %w", e.Name, err)
			}
			k.keep[key(sr, id)] = true
		}
	}
	if k.all, err = record.ListDeployments(r); err != nil {
		return nil, err
	}
	for _, d := range k.all {
		k.byKey[key(d.Stateroot, d.ID)] = d
		if d.Pinned {
			k.keep[key(d.Stateroot, d.ID)] = true
		}
	}
	for dk := range k.keep {
		if k.byKey[dk] == nil {
			// A staged record or boot entry naming a missing deployment: keep going, it has
			// nothing to keep, but do not count it as kept.
			delete(k.keep, dk)
		}
	}
	return k, nil
}

// keepDeployments marks the kept deployments (Kept) and the boot files every boot entry names,
// and returns every recorded deployment, in order and by key.
func (p *plan) keepDeployments(opts Options) ([]*record.Deployment, map[string]*record.Deployment, error) {
	k, err := loadKept(opts.Root, opts.Cmdline)
	if err != nil {
		return nil, nil, err
	}
	p.keepDeps = k.keep
	if err := p.keepEntryBootFiles(opts.Root); err != nil {
		return nil, nil, err
	}
	return k.all, k.byKey, nil
}

// splitDeployments puts each deployment that is not kept on the removal list, and keeps the
// image, layers and boot files of each kept one.
func (p *plan) splitDeployments(r layout.Root, all []*record.Deployment, layers map[digest.Digest]bool) {
	for _, d := range all {
		if !p.keepDeps[key(d.Stateroot, d.ID)] {
			p.removeDeps = append(p.removeDeps, d)
			continue
		}
		p.keepImages[d.Image.ManifestDigest] = true
		addLayers(layers, d.Image.Layers)
		if d.BootDigest != "" {
			p.keepBoot[layout.DigestDir(d.BootDigest)] = true
		}
	}
}

// addLayers adds the layer digests ls to set, skipping any that do not parse.
func addLayers(set map[digest.Digest]bool, ls []string) {
	for _, l := range ls {
		if d, err := digest.Parse(l); err == nil {
			set[d] = true
		}
	}
}

// scanImages lists the fetched images that are not kept and the interrupted fetches, and adds
// the layers of each kept fetched image to layers.
func (p *plan) scanImages(r layout.Root, layers map[digest.Digest]bool) error {
	imgs, err := os.ReadDir(r.Images())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range imgs {
		name := e.Name()
		if deploy.IsTemp(name) {
			p.leftovers = append(p.leftovers, filepath.Join(r.Images(), name))
			continue
		}
		dg, ok := layout.DirDigest(name)
		if !ok || !e.IsDir() {
			continue
		}
		if !p.keepImages[dg] {
			p.images = append(p.images, dg)
			continue
		}
		if f, err := record.ReadFetchedImage(r, dg); err == nil {
			addLayers(layers, f.Image.Layers)
		} else if !errors.Is(err, record.ErrNotFound) {
			return err
		}
	}
	return nil
}

// keepPresentLayers keeps the layers of layers the store holds, sorted. A kept image whose
// layer is gone has nothing left to protect, and store.GC refuses unknown layers.
func (p *plan) keepPresentLayers(st *store.Store, layers map[digest.Digest]bool) error {
	for d := range layers {
		has, err := st.HasLayer(d)
		if err != nil {
			return err
		}
		if has {
			p.keepLayers = append(p.keepLayers, d)
		}
	}
	sort.Slice(p.keepLayers, func(i, j int) bool { return p.keepLayers[i] < p.keepLayers[j] })
	return nil
}

// scanBootFiles lists the boot file sets that are not kept and the interrupted copies.
func (p *plan) scanBootFiles(r layout.Root) error {
	boots, err := os.ReadDir(r.BootFilesRoot())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range boots {
		name := e.Name()
		switch {
		case deploy.IsTemp(name):
			p.leftovers = append(p.leftovers, filepath.Join(r.BootFilesRoot(), name))
		case e.IsDir() && isDigestDir(name) && !p.keepBoot[name]:
			p.bootDirs = append(p.bootDirs, name)
		}
	}
	return nil
}

// readEntries reads the boot entries; a /boot without any has none.
func readEntries(r layout.Root) ([]bls.Entry, error) {
	entries, err := bls.ReadDir(r.Entries())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return entries, err
}

// keepEntryBootFiles keeps every boot file set a boot entry names, whichever deployment it
// belongs to.
func (p *plan) keepEntryBootFiles(r layout.Root) error {
	entries, err := readEntries(r)
	if err != nil {
		return err
	}
	for _, e := range entries {
		for _, f := range append([]string{e.Linux}, e.Initrd...) {
			parts := strings.Split(strings.Trim(f, "/"), "/")
			for i := 0; i+1 < len(parts); i++ {
				if parts[i] == layout.BootFilesDir {
					p.keepBoot[parts[i+1]] = true
				}
			}
		}
	}
	return nil
}

// keepStateImages keeps the image each stateroot's last update check found and the images the
// stateroots retain.
func (p *plan) keepStateImages(r layout.Root) error {
	srs, err := record.Stateroots(r)
	if err != nil {
		return err
	}
	for _, sr := range srs {
		c, err := record.ReadCachedUpdate(r, sr)
		if err == nil {
			p.keepImages[c.Image.ManifestDigest] = true
		} else if !errors.Is(err, record.ErrNotFound) {
			return err
		}
	}
	retained, err := record.RetainedDigests(r)
	for dg := range retained {
		p.keepImages[dg] = true
	}
	return err
}

// orphans finds interrupted builds, deployment trees without a record (a crash between the
// rename and the record, or during a removal) and state directories of deployments that no
// longer exist. State directories are matched by the shape of the ids Build allocates only,
// since the stateroot's shared var/ lives beside them.
func (p *plan) orphans(r layout.Root, byKey map[string]*record.Deployment) error {
	deployBase := r.Deploys()
	roots, err := os.ReadDir(deployBase)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, sr := range roots {
		name := sr.Name()
		if !sr.IsDir() || layout.CheckName("stateroot", name) != nil {
			continue
		}
		ents, err := os.ReadDir(r.Deploy(name))
		if err != nil {
			return err
		}
		for _, e := range ents {
			switch {
			case deploy.IsTemp(e.Name()):
				p.leftovers = append(p.leftovers, filepath.Join(r.Deploy(name), e.Name()))
			case e.IsDir() && layout.CheckName("deployment id", e.Name()) == nil && byKey[key(name, e.Name())] == nil:
				p.leftovers = append(p.leftovers, r.Deployment(name, e.Name()))
			}
		}
		states, err := os.ReadDir(r.State(name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, e := range states {
			if e.IsDir() && deploy.IsID(e.Name()) && byKey[key(name, e.Name())] == nil {
				p.leftovers = append(p.leftovers, r.DeploymentState(name, e.Name()))
			}
		}
	}
	return nil
}

func isDigestDir(name string) bool {
	_, ok := layout.DirDigest(name)
	return ok
}

// fileID names an inode.
type fileID struct{ dev, ino uint64 }

// tally counts, per inode, the links found in the trees about to be removed: an inode whose
// every link is among them is freed.
type tally struct {
	links map[fileID]uint64
	nlink map[fileID]uint64
	size  map[fileID]int64
}

func newTally() *tally {
	return &tally{links: map[fileID]uint64{}, nlink: map[fileID]uint64{}, size: map[fileID]int64{}}
}

func (t *tally) walk(root string) error {
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		var sb unix.Stat_t
		if err := unix.Lstat(p, &sb); err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		id := fileID{uint64(sb.Dev), sb.Ino}
		t.links[id]++
		t.nlink[id] = uint64(sb.Nlink)
		t.size[id] = sb.Size
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (t *tally) freed() int64 {
	var n int64
	for id, l := range t.links {
		if l >= t.nlink[id] {
			n += t.size[id]
		}
	}
	return n
}

// storeGarbage measures what store.GC would remove once the tallied trees are gone, for a dry
// run: layers not kept, and objects no kept layer references whose only remaining link would
// be the store's own.
func storeGarbage(st *store.Store, keep []digest.Digest, t *tally) (layers, objects int, bytes int64, err error) {
	kept := map[digest.Digest]bool{}
	for _, d := range keep {
		kept[d] = true
	}
	all, err := st.Layers()
	if err != nil {
		return 0, 0, 0, err
	}
	for _, d := range all {
		if kept[d] {
			continue
		}
		layers++
		if fi, err := os.Lstat(st.LayerPath(d)); err == nil {
			bytes += fi.Size()
		}
	}
	refs, err := st.Objects(keep...)
	if err != nil {
		return 0, 0, 0, err
	}
	refSet := make(map[string]bool, len(refs))
	for _, k := range refs {
		refSet[k] = true
	}
	objRoot := st.ObjectsDir()
	fans, err := os.ReadDir(objRoot)
	if err != nil {
		return 0, 0, 0, err
	}
	for _, fan := range fans {
		if len(fan.Name()) != 2 || !fan.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(objRoot, fan.Name()))
		if err != nil {
			return 0, 0, 0, err
		}
		for _, e := range ents {
			k := fan.Name() + e.Name()
			if refSet[k] || digest.SHA256.Validate(k) != nil {
				continue
			}
			var sb unix.Stat_t
			p := filepath.Join(objRoot, fan.Name(), e.Name())
			if err := unix.Lstat(p, &sb); err != nil {
				return 0, 0, 0, &os.PathError{Op: "lstat", Path: p, Err: err}
			}
			if uint64(sb.Nlink)-t.links[fileID{uint64(sb.Dev), sb.Ino}] <= 1 {
				objects++
				bytes += sb.Size
			}
		}
	}
	return layers, objects, bytes, nil
}
