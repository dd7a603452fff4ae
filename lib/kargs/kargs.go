// Package kargs applies the kernel arguments an image ships in
// /usr/lib/bootc/kargs.d to a host's boot entry across updates.
//
// An image lists arguments in kargs.d/*.toml files:
//
//	kargs = ["console=ttyS0,115200n8", "mitigations=auto,nosmt"]
//	match-architectures = ["x86_64", "aarch64"]   # optional
//
// On an update only the difference between the old and the new image's
// lists is applied to the current entry, so arguments the machine owns
// (install-time --karg, edits by other tools or an administrator) survive.
// See Reconcile for the exact rules.
package kargs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"gobootc.dev/lib/cmdline"
)

// Dir is where an image keeps its kargs.d files, relative to its root.
const Dir = "usr/lib/bootc/kargs.d"

// ErrInvalid means a kargs.d file's content is wrong: bad TOML, an unknown
// or missing key, a value of the wrong type or an unusable argument.
var ErrInvalid = errors.New("invalid kargs.d file")

// Set is what one image asks for through kargs.d.
type Set struct {
	// Found reports whether the image has a kargs.d directory. An image
	// without one expresses no opinion and Reconcile leaves the host's
	// arguments alone; an empty directory means "no image arguments" and
	// withdraws those the previous image added.
	Found bool
	// Args are the arguments of the matching files in file-name order. An
	// exact duplicate of an earlier argument is left out: it would add
	// nothing, and it would make one removal take away two copies.
	Args []cmdline.Arg
}

// Load reads root's kargs.d for the given architecture (a name such as
// x86_64; see HostArch). Only files whose names end in ".toml" are read,
// in byte order of their names; other files are ignored. A missing
// directory is not an error: it gives a Set with Found false. Paths are
// resolved inside root, so a symlink in the image cannot make the host's
// own files be read.
func Load(root, arch string) (Set, error) {
	if err := checkArch(arch); err != nil {
		return Set{}, err
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return Set{}, fmt.Errorf("loading kargs.d: %w", err)
	}
	defer r.Close()

	d, err := r.Open(Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return Set{}, nil
	}
	if err != nil {
		return Set{}, fmt.Errorf("loading kargs.d of %s: %w", root, err)
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return Set{}, fmt.Errorf("loading kargs.d of %s: %w", root, err)
	}
	var names []string
	for _, e := range entries {
		if isConfigName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)

	set := Set{Found: true}
	for _, name := range names {
		display := filepath.Join(root, Dir, name)
		data, err := r.ReadFile(path.Join(Dir, name))
		if err != nil {
			return Set{}, fmt.Errorf("loading kargs.d: %w", err)
		}
		args, err := ParseFile(display, data, arch)
		if err != nil {
			return Set{}, err
		}
		for _, a := range args {
			if !containsArg(set.Args, a) {
				set.Args = append(set.Args, a)
			}
		}
	}
	return set, nil
}

// isConfigName matches "*.toml" but not a bare ".toml", which has no name
// before the extension.
func isConfigName(name string) bool {
	return len(name) > len(".toml") && strings.HasSuffix(name, ".toml")
}

// ParseFile parses one kargs.d file; name is used only in errors. It
// returns no arguments when the file's match-architectures list (present
// but not containing arch, including an empty list) excludes arch.
//
// Each kargs string is read as command-line text, so one string may hold
// several arguments: "a=1 b=2" gives two, while `k="a b"` stays one with its
// quotes kept. Upstream bootc joins the strings with spaces and parses the
// result, which agrees except that a quote there may run from one string
// into the next; here each string must close its own quotes.
func ParseFile(name string, data []byte, arch string) ([]cmdline.Arg, error) {
	var doc map[string]toml.Primitive
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %s", ErrInvalid, name, oneLine(err.Error()))
	}
	// Keys are checked by hand because the TOML decoder matches struct
	// fields case-insensitively, and "Kargs" must be rejected, not obeyed.
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k != "kargs" && k != "match-architectures" {
			return nil, fmt.Errorf("%w %s: unknown key %q", ErrInvalid, name, k)
		}
	}
	rawKargs, ok := doc["kargs"]
	if !ok {
		return nil, fmt.Errorf("%w %s: missing required key \"kargs\"", ErrInvalid, name)
	}
	var kargs []string
	if err := md.PrimitiveDecode(rawKargs, &kargs); err != nil {
		return nil, fmt.Errorf("%w %s: key \"kargs\" must be a list of strings", ErrInvalid, name)
	}
	if rawArches, ok := doc["match-architectures"]; ok {
		var arches []string
		if err := md.PrimitiveDecode(rawArches, &arches); err != nil {
			return nil, fmt.Errorf("%w %s: key \"match-architectures\" must be a list of strings", ErrInvalid, name)
		}
		if !slices.Contains(arches, arch) {
			return nil, nil
		}
	}

	var args []cmdline.Arg
	for i, s := range kargs {
		c, err := cmdline.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%w %s: kargs[%d] %q: %w", ErrInvalid, name, i, s, err)
		}
		if _, hasInit := c.Init(); hasInit {
			return nil, fmt.Errorf("%w %s: kargs[%d] %q: arguments after \"--\" go to init and cannot come from kargs.d", ErrInvalid, name, i, s)
		}
		args = append(args, c.Args()...)
	}
	return args, nil
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func containsArg(args []cmdline.Arg, a cmdline.Arg) bool {
	return slices.ContainsFunc(args, a.Equal)
}

// Reconcile computes the arguments of a new boot entry from the current
// entry's arguments and the kargs.d of the image it came from (oldSet) and
// of the image being deployed (newSet):
//
//   - an argument oldSet has and newSet lacks is removed from current, one
//     occurrence, matched exactly (keys with '-' = '_', values exactly);
//   - an argument newSet has and oldSet lacks is appended, unless current
//     already holds it exactly; quoting is kept as the image wrote it;
//   - everything else in current stays where it is, with its bytes:
//     machine-local arguments, repeated keys such as two console=, an image
//     argument the administrator deleted (it stays deleted until an image
//     adds it anew), and the init part after "--".
//
// When the new image has no kargs.d directory at all (newSet.Found false)
// the result equals current: arguments the old image added are neither
// removed nor re-added. Upstream bootc in that case re-appends any of the
// old image's arguments missing from current, which would resurrect one an
// administrator deleted; this package leaves the entry as it is instead.
// An empty kargs.d directory, by contrast, removes all the old image's
// arguments.
//
// current is not modified.
func Reconcile(current *cmdline.Cmdline, oldSet, newSet Set) (*cmdline.Cmdline, error) {
	out := current.Clone()
	if !newSet.Found {
		return out, nil
	}
	for _, a := range oldSet.Args {
		if !containsArg(newSet.Args, a) {
			out.RemoveExact(a)
		}
	}
	for _, a := range newSet.Args {
		if containsArg(oldSet.Args, a) || out.Contains(a) {
			continue
		}
		if err := out.Append(a); err != nil {
			return nil, fmt.Errorf("reconciling kernel arguments: %w", err)
		}
	}
	return out, nil
}

// ReconcileRoots loads kargs.d from the old and the new image roots for
// arch and applies Reconcile to current.
func ReconcileRoots(current *cmdline.Cmdline, oldRoot, newRoot, arch string) (*cmdline.Cmdline, error) {
	oldSet, err := Load(oldRoot, arch)
	if err != nil {
		return nil, err
	}
	newSet, err := Load(newRoot, arch)
	if err != nil {
		return nil, err
	}
	return Reconcile(current, oldSet, newSet)
}
