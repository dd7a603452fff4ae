package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containers/podman/v5/pkg/bindings/images"
	"github.com/distribution/reference"

	"gobootc.dev/lib/boundimage"
	"gobootc.dev/lib/layout"
)

// deploymentRoot resolves --deployment or --root.
func deploymentRoot(r layout.Root, dep, root string) (string, error) {
	switch {
	case dep != "" && root != "":
		return "", fmt.Errorf("--deployment and --root exclude each other")
	case dep == "" && root == "":
		return "", fmt.Errorf("name the deployment with --deployment STATEROOT/ID or a root with --root DIR")
	case root != "":
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("--root %s: not a directory", root)
		}
		return root, nil
	}
	sr, id, ok := strings.Cut(dep, "/")
	if !ok {
		return "", fmt.Errorf("--deployment %q: want STATEROOT/ID", dep)
	}
	if err := layout.CheckName("stateroot", sr); err != nil {
		return "", fmt.Errorf("--deployment: %w", err)
	}
	if err := layout.CheckName("deployment id", id); err != nil {
		return "", fmt.Errorf("--deployment: %w", err)
	}
	d := r.Deployment(sr, id)
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("deployment %s does not exist (no %s)", dep, d)
	}
	return d, nil
}

// sync stores every bound image the deployment declares that bootc's storage lacks. Step
// order: read and check every declaration (nothing is started when one is bad or there are
// none); lock; start the service on bootc's storage; for each image, in declaration order,
// keep it if present, else pull it (or copy it from --from-storage); stop the service.
func (c *CLI) sync(ctx context.Context, out, errOut io.Writer) error {
	s := &c.Sync
	root, err := deploymentRoot(c.Layout(), s.Deployment, s.Root)
	if err != nil {
		return err
	}
	decl, err := boundimage.Read(root)
	if err != nil {
		return err
	}
	if len(decl) == 0 {
		fmt.Fprintln(out, "No bound images declared.")
		return nil
	}
	if s.FromStorage != "" {
		if err := checkCopyable(decl); err != nil {
			return err
		}
	}
	r, l, err := c.writer(ctx, "bound-images sync", errOut)
	if err != nil {
		return err
	}
	defer l.Release()

	tmp, err := os.MkdirTemp("", "bootc-bound-images.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	auth, err := c.pullSecret(s.Authfile, tmp)
	if err != nil {
		return err
	}
	env := serviceEnv(s.RegistriesConf)
	dst, err := startService(ctx, serviceOptions{Podman: c.Podman, Root: r.BoundStorage(), Private: true, Env: env})
	if err != nil {
		return err
	}
	defer dst.Stop()
	stored, err := c.storeMissing(ctx, dst, decl, auth, env, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Bound images stored: %d (of %d declared)\n", stored, len(decl))
	return nil
}

// checkCopyable refuses images pinned by digest for a copy from --from-storage: a copy
// through an archive changes the manifest, so the digest would no longer match.
func checkCopyable(decl []boundimage.Image) error {
	for _, im := range decl {
		if n, err := reference.ParseNormalizedNamed(im.Image); err == nil {
			if _, ok := n.(reference.Digested); ok {
				return fmt.Errorf("bound image %s (%s) is pinned by digest: a copy from --from-storage cannot keep its digest; pull it instead", im.Image, im.Name)
			}
		}
	}
	return nil
}

// storeMissing stores, in declaration order, each declared image that dst lacks: pulled, or
// copied from --from-storage (whose service starts with the first copy). It returns how many
// it stored.
func (c *CLI) storeMissing(ctx context.Context, dst *service, decl []boundimage.Image, auth string, env []string, out io.Writer) (int, error) {
	s := &c.Sync
	var src *service
	fromRoot := ""
	if s.FromStorage != "" {
		fromRoot = graphRoot(s.FromStorage)
	}
	stored := 0
	for _, im := range decl {
		ok, err := images.Exists(dst.Conn, im.Image, nil)
		if err != nil {
			return stored, fmt.Errorf("bound image %s: %w", im.Image, err)
		}
		if ok {
			fmt.Fprintf(out, "Bound image %s: present\n", im.Image)
			continue
		}
		if s.FromStorage == "" {
			opts := new(images.PullOptions).WithAuthfile(auth).WithQuiet(true)
			if _, err := images.Pull(dst.Conn, im.Image, opts); err != nil {
				return stored, fmt.Errorf("pulling bound image %s (%s): %w", im.Image, im.Name, oneLine(err))
			}
			fmt.Fprintf(out, "Bound image %s: pulled\n", im.Image)
		} else {
			if src == nil {
				// The other storage keeps its own run root: it may be in use by its owner.
				src, err = startService(ctx, serviceOptions{Podman: c.Podman, Root: fromRoot, Env: env})
				if err != nil {
					return stored, err
				}
				defer src.Stop()
			}
			if err := copyImage(src, dst, im.Image); err != nil {
				return stored, fmt.Errorf("copying bound image %s (%s) from %s: %w", im.Image, im.Name, fromRoot, oneLine(err))
			}
			fmt.Fprintf(out, "Bound image %s: copied from %s\n", im.Image, fromRoot)
		}
		stored++
	}
	return stored, nil
}

// graphRoot accepts a containers-storage graph root or the directory above it
// (/var/lib/containers for /var/lib/containers/storage).
func graphRoot(dir string) string {
	if _, err := os.Stat(filepath.Join(dir, "overlay-images")); err == nil {
		return dir
	}
	if fi, err := os.Stat(filepath.Join(dir, "storage")); err == nil && fi.IsDir() {
		return filepath.Join(dir, "storage")
	}
	return dir
}

// copyImage streams ref out of src's storage and into dst's as a docker-archive (the libpod
// API pulls from registries only), and names it ref there.
func copyImage(src, dst *service, ref string) error {
	ok, err := images.Exists(src.Conn, ref, nil)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no such image there")
	}
	info, err := images.GetImage(src.Conn, ref, nil)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	exported := make(chan error, 1)
	go func() {
		err := images.Export(src.Conn, []string{ref}, pw, new(images.ExportOptions).WithFormat("docker-archive").WithCompress(false))
		pw.CloseWithError(err)
		exported <- err
	}()
	_, loadErr := images.Load(dst.Conn, pr)
	pr.CloseWithError(io.ErrClosedPipe)
	if err := <-exported; err != nil {
		return fmt.Errorf("exporting: %w", err)
	}
	if loadErr != nil {
		return fmt.Errorf("loading: %w", loadErr)
	}
	if ok, err := images.Exists(dst.Conn, ref, nil); err != nil || ok {
		return err
	}
	// The archive names the image as the source store does; add the declared name.
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return err
	}
	tag := "latest"
	if t, ok := n.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return images.Tag(dst.Conn, info.ID, tag, n.Name(), nil)
}

// oneLine keeps an error from podman on one line.
func oneLine(err error) error {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
	if msg == err.Error() {
		return err
	}
	return fmt.Errorf("%s", msg)
}
