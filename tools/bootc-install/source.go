package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"gobootc.dev/lib/host"
	"gobootc.dev/lib/imgref"
)

// hostStorage is the host's container storage as a podman container sees it when the host's
// /var/lib/containers is mounted in (podman run -v /var/lib/containers:/var/lib/containers).
const hostStorage = "[overlay@/var/lib/containers/storage+/run/containers/storage]"

// ErrNoSource: no --source-imgref and not running in a podman container.
var ErrNoSource = errors.New("--source-imgref must be defined when not running in a podman container")

// source is what is installed and what the installed system follows.
type source struct {
	fetch  imgref.Ref // what bootc-fetch reads now
	target imgref.Ref // recorded for updates
	sig    *host.ImageSignature
}

// targetRef is the reference recorded in the deployment.
func (s source) targetRef() host.ImageReference {
	return host.ImageReference{Image: s.target.Image, Transport: s.target.Transport.String(), Signature: s.sig}
}

// containerEnv is what podman writes to /run/.containerenv.
type containerEnv struct {
	image, imageID string
	rootless       bool
}

// readContainerEnv parses /run/.containerenv; nil when the file does not exist.
func readContainerEnv(path string) (*containerEnv, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	ce := &containerEnv{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		}
		switch k {
		case "image":
			ce.image = v
		case "imageid":
			ce.imageID = v
		case "rootless":
			ce.rootless = v == "1"
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return ce, nil
}

// resolveSource works out the image to install and the one to follow: --source-imgref, or the
// running container's own image from the host's storage.
func (c *Common) resolveSource() (source, error) {
	var s source
	if c.EnforceContainerSigpolicy {
		s.sig = &host.ImageSignature{Mode: host.SignatureContainerPolicy}
	}
	if c.SourceImgref != "" {
		ref, err := imgref.ParseTransportString(c.SourceImgref)
		if err != nil {
			return s, fmt.Errorf("--source-imgref: %w", err)
		}
		s.fetch, s.target = ref, ref
	} else {
		ce, err := readContainerEnv(c.ContainerEnv)
		if err != nil {
			return s, err
		}
		if ce == nil || ce.imageID == "" {
			return s, ErrNoSource
		}
		if ce.rootless {
			return s, fmt.Errorf("this container runs under rootless podman; install needs podman run --privileged as root")
		}
		if s.fetch, err = imgref.Parse(string(imgref.ContainersStorage), hostStorage+ce.imageID); err != nil {
			return s, fmt.Errorf("this container's image id %q (from %s): %w", ce.imageID, c.ContainerEnv, err)
		}
		if ce.image == "" {
			s.target = s.fetch
		} else if s.target, err = imgref.Parse(string(imgref.Registry), ce.image); err != nil {
			return s, fmt.Errorf("this container's image %q (from %s): %w", ce.image, c.ContainerEnv, err)
		}
	}
	if c.TargetImgref != "" {
		cwd, err := os.Getwd()
		if err != nil {
			cwd = "/"
		}
		ref, err := imgref.Resolve(c.TargetTransport, c.TargetImgref, cwd)
		if err != nil {
			return s, fmt.Errorf("--target-imgref: %w", err)
		}
		s.target = ref
	} else if c.TargetTransport != "" && c.TargetTransport != string(imgref.Registry) {
		return s, fmt.Errorf("--target-transport %s needs --target-imgref", c.TargetTransport)
	}
	return s, nil
}
