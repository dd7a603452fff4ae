// Package boundimage reads the logically bound images a deployment declares: the symlinks in its
// /usr/lib/bootc/bound-images.d/ to podman quadlet .image and .container files.
//
// Only the Image= key is honoured, as upstream bootc does. Whatever podman would treat
// differently from bootc is refused rather than ignored: systemd specifiers (only "%%", a literal
// "%", is allowed, because bootc pulls the image outside systemd and cannot expand them) and
// per-image credentials (AuthFile=, PullSecret=; bound images always use bootc's pull secret).
package boundimage

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Dir is the declaration directory, relative to a deployment root.
const Dir = "usr/lib/bootc/bound-images.d"

// Sentinel errors, wrapped by Read's errors, for callers and tests that tell causes apart.
var (
	// ErrDeclaration: an entry of Dir that is not a symlink to a .image or .container file.
	ErrDeclaration = errors.New("invalid bound image declaration")
	// ErrSyntax: the quadlet file is not valid unit-file syntax.
	ErrSyntax = errors.New("malformed quadlet file")
	// ErrUnsupported: the quadlet file uses something bound images cannot honour.
	ErrUnsupported = errors.New("unsupported in a bound image")
)

// Image is one declared bound image.
type Image struct {
	// Image is the reference from Image=, with "%%" turned into "%".
	Image string
	// Name is the declaration's file name in Dir.
	Name string
	// Source is the quadlet file the symlink resolves to, as a path inside the deployment root.
	Source string
}

// Declares reports whether root has any entry in Dir, without reading or checking them: a cheap
// test for callers that only need to know whether there is anything to do.
func Declares(root string) (bool, error) {
	entries, err := os.ReadDir(filepath.Join(root, Dir))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading bound images: %w", err)
	}
	return len(entries) > 0, nil
}

// HasImages reports whether the containers-storage at storage (bootc's bound image storage)
// holds any image, by reading the image lists of its graph drivers rather than starting podman:
// collecting an empty storage needs no podman at all. A list it cannot parse counts as holding
// images, so that podman, not this guess, decides what is there.
func HasImages(storage string) (bool, error) {
	lists, err := filepath.Glob(filepath.Join(storage, "*-images", "images.json"))
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", storage, err)
	}
	for _, p := range lists {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return false, fmt.Errorf("reading the image list: %w", err)
		}
		var list []json.RawMessage
		if err := json.Unmarshal(data, &list); err != nil || len(list) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// Read returns the bound images root declares, in declaration name order. A root without Dir
// declares none. Any bad declaration fails the whole read: a deployment whose bound images
// cannot all be honoured must not be staged as if it had fewer.
func Read(root string) ([]Image, error) {
	dir := filepath.Join(root, Dir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading bound images: %w", err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var out []Image
	for _, name := range names {
		im, err := readOne(root, name)
		if err != nil {
			return nil, err
		}
		out = append(out, im)
	}
	return out, nil
}

func readOne(root, name string) (Image, error) {
	decl := "/" + path.Join(Dir, name)
	fi, err := os.Lstat(filepath.Join(root, Dir, name))
	if err != nil {
		return Image{}, fmt.Errorf("reading bound image %s: %w", decl, err)
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return Image{}, fmt.Errorf("bound image %s: %w: not a symlink (link it to a quadlet .image or .container file)", decl, ErrDeclaration)
	}
	var section string
	switch path.Ext(name) {
	case ".image":
		section = "Image"
	case ".container":
		section = "Container"
	default:
		return Image{}, fmt.Errorf("bound image %s: %w: want a name ending in .image or .container", decl, ErrDeclaration)
	}
	src, err := resolve(root, decl)
	if err != nil {
		return Image{}, fmt.Errorf("bound image %s: %w", decl, err)
	}
	f, err := os.Open(filepath.Join(root, src))
	if err != nil {
		return Image{}, fmt.Errorf("bound image %s: opening %s: %w", decl, src, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && !fi.Mode().IsRegular() {
		return Image{}, fmt.Errorf("bound image %s: %w: %s is not a regular file", decl, ErrDeclaration, src)
	}
	ref, err := Parse(src, section, f)
	if err != nil {
		return Image{}, fmt.Errorf("bound image %s: %w", decl, err)
	}
	return Image{Image: ref, Name: name, Source: src}, nil
}

// maxLinks bounds symlink resolution, as the kernel's ELOOP limit does.
const maxLinks = 40

// resolve follows every symlink in p (an absolute path inside root) as if root were "/": an
// absolute target starts again at root and ".." stops at root, so the result never leaves
// it. It returns the resolved path inside root, starting with "/".
func resolve(root, p string) (string, error) {
	links := 0
	done := "/"                                            // resolved so far, inside root
	todo := strings.Split(strings.TrimPrefix(p, "/"), "/") // components still to walk
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			done = path.Dir(done)
			continue
		}
		next := path.Join(done, c)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", p, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("resolving %s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", fmt.Errorf("resolving %s: %w", p, err)
		}
		if strings.HasPrefix(target, "/") {
			done = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return done, nil
}

// Parse reads a quadlet file (systemd unit-file syntax) named name and returns the last Image=
// of section, unescaped. It fails on malformed lines (naming the line), on AuthFile= or
// PullSecret= anywhere, on systemd specifiers in Image=, and when section has no Image=.
func Parse(name, section string, r io.Reader) (string, error) {
	var (
		cur     string
		image   string
		imageLn int
		sc      = bufio.NewScanner(r)
		lineNo  int
		pending strings.Builder // a line continued with a trailing backslash
		startNo int
	)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		lineNo++
		raw := sc.Text()
		if pending.Len() == 0 {
			t := strings.TrimSpace(raw)
			// Comments end at the line: a backslash there does not continue them.
			if t == "" || t[0] == '#' || t[0] == ';' {
				continue
			}
			startNo = lineNo
		}
		if strings.HasSuffix(raw, "\\") {
			pending.WriteString(strings.TrimSuffix(raw, "\\"))
			pending.WriteByte(' ')
			continue
		}
		pending.WriteString(raw)
		line := strings.TrimSpace(pending.String())
		pending.Reset()

		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") || len(line) < 3 || strings.ContainsAny(line[1:len(line)-1], "[]") {
				return "", fmt.Errorf("%s:%d: %w: bad section header %q", name, startNo, ErrSyntax, line)
			}
			cur = line[1 : len(line)-1]
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return "", fmt.Errorf("%s:%d: %w: want KEY=VALUE, a [Section] header or a comment, got %q", name, startNo, ErrSyntax, line)
		}
		if cur == "" {
			return "", fmt.Errorf("%s:%d: %w: key %q before any [Section] header", name, startNo, ErrSyntax, key)
		}
		value = strings.TrimSpace(value)
		switch {
		case key == "AuthFile" || key == "PullSecret":
			return "", fmt.Errorf("%s:%d: %w: %s= (bound images are pulled with bootc's pull secret, /etc/ostree/auth.json)", name, startNo, ErrUnsupported, key)
		case key == "Image" && cur == section:
			// systemd semantics: a later assignment replaces an earlier one; an empty one resets.
			image, imageLn = value, startNo
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	if pending.Len() > 0 {
		return "", fmt.Errorf("%s:%d: %w: the file ends in a line continuation", name, startNo, ErrSyntax)
	}
	if image == "" {
		return "", fmt.Errorf("%s: %w: no Image= in [%s]", name, ErrDeclaration, section)
	}
	ref, err := unescape(image)
	if err != nil {
		return "", fmt.Errorf("%s:%d: %w", name, imageLn, err)
	}
	return ref, nil
}

// unescape turns "%%" into "%" and refuses every other specifier: bootc pulls outside
// systemd, where "%H" or "%i" have no value.
func unescape(v string) (string, error) {
	if !strings.Contains(v, "%") {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '%' {
			b.WriteByte(v[i])
			continue
		}
		if i+1 < len(v) && v[i+1] == '%' {
			b.WriteByte('%')
			i++
			continue
		}
		spec := "%"
		if i+1 < len(v) {
			spec = v[i : i+2]
		}
		return "", fmt.Errorf("%w: systemd specifier %q in Image=%q (write %%%% for a literal %%)", ErrUnsupported, spec, v)
	}
	return b.String(), nil
}
