// Package installconfig reads the install configuration an image ships as TOML drop-ins in
// bootc/install/ directories and merges it into one.
//
// Drop-ins live in usr/lib/bootc/install, etc/bootc/install and run/bootc/install (Dirs, in
// that order). A file in a later directory replaces the file of the same name in an earlier
// one, as systemd drop-ins do; the remaining files are applied in byte order of their names.
// Every file is a table [install] holding the keys of Config; within the merge a later file
// wins per key, except kargs and karg-deletes, which accumulate. A file whose
// match-architectures list does not name this machine's architecture is ignored as a whole.
package installconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"gobootc.dev/lib/layout"
)

// Dirs are the drop-in directories, relative to the root, lowest precedence first.
var Dirs = []string{"usr/lib/bootc/install", "etc/bootc/install", "run/bootc/install"}

// Accepted values.
var (
	FilesystemTypes = []string{"xfs", "ext4", "btrfs"}
	BlockSetups     = []string{"direct", "tpm2-luks"}
	Bootloaders     = []string{"grub", "systemd", "none"}
)

// Errors callers test with errors.Is.
var (
	// ErrUnknownKey: a file holds a key this implementation does not know.
	ErrUnknownKey = errors.New("unknown key")
	// ErrInvalid: a file is not valid TOML or a value is not one of the accepted ones.
	ErrInvalid = errors.New("invalid install configuration")
)

// Config is the merged configuration. Its JSON form is what `bootc install
// print-configuration` prints: the contents of the [install] table, keys in kebab-case.
type Config struct {
	RootFSType         string      `json:"root-fs-type,omitempty"`
	Filesystem         *Filesystem `json:"filesystem,omitempty"`
	Kargs              []string    `json:"kargs,omitempty"`
	KargDeletes        []string    `json:"karg-deletes,omitempty"`
	Block              []string    `json:"block,omitempty"`
	MatchArchitectures []string    `json:"match-architectures,omitempty"`
	Stateroot          string      `json:"stateroot,omitempty"`
	// RootMountSpec and BootMountSpec are pointers because an empty string is meaningful: it
	// asks for no root= (or /boot mount) at all.
	RootMountSpec *string `json:"root-mount-spec,omitempty"`
	BootMountSpec *string `json:"boot-mount-spec,omitempty"`
	Bootloader    string  `json:"bootloader,omitempty"`
}

// Filesystem is [install.filesystem].
type Filesystem struct {
	Root *FilesystemRoot `json:"root,omitempty"`
}

// FilesystemRoot is [install.filesystem.root].
type FilesystemRoot struct {
	Type string `json:"type"`
}

// fileDoc is one drop-in as written: pointers tell a key that is absent from one set empty.
type fileDoc struct {
	Install *fileInstall `toml:"install"`
}

type fileInstall struct {
	RootFSType         *string   `toml:"root-fs-type"`
	Filesystem         *fileFS   `toml:"filesystem"`
	Kargs              []string  `toml:"kargs"`
	KargDeletes        []string  `toml:"karg-deletes"`
	Block              *[]string `toml:"block"`
	MatchArchitectures *[]string `toml:"match-architectures"`
	Stateroot          *string   `toml:"stateroot"`
	RootMountSpec      *string   `toml:"root-mount-spec"`
	BootMountSpec      *string   `toml:"boot-mount-spec"`
	Bootloader         *string   `toml:"bootloader"`
}

type fileFS struct {
	Root *struct {
		Type *string `toml:"type"`
	} `toml:"root"`
}

// FSType is the root filesystem type the configuration asks for, or "".
func (c *Config) FSType() string {
	if c.Filesystem != nil && c.Filesystem.Root != nil && c.Filesystem.Root.Type != "" {
		return c.Filesystem.Root.Type
	}
	return c.RootFSType
}

// Public is the configuration without kargs and karg-deletes, which print-configuration shows
// only with --all (they are applied at install and become the machine's own).
func (c *Config) Public() *Config {
	p := *c
	p.Kargs, p.KargDeletes = nil, nil
	return &p
}

// Parse reads one drop-in; name is used only in errors. It reports false when the file's
// match-architectures excludes arch, and then returns an empty configuration.
func Parse(name string, data []byte, arch string) (*Config, bool, error) {
	var doc fileDoc
	md, err := toml.Decode(string(data), &doc)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		return nil, false, fmt.Errorf("%s: %w %q", name, ErrUnknownKey, un[0].String())
	}
	c := &Config{}
	in := doc.Install
	if in == nil {
		return c, true, nil
	}
	if in.MatchArchitectures != nil {
		if !slices.Contains(*in.MatchArchitectures, arch) {
			return &Config{}, false, nil
		}
		c.MatchArchitectures = *in.MatchArchitectures
	}
	// root-fs-type and [filesystem.root] type name the same thing; the table wins within a file.
	fsType := ""
	if in.RootFSType != nil {
		fsType = *in.RootFSType
	}
	if in.Filesystem != nil && in.Filesystem.Root != nil && in.Filesystem.Root.Type != nil {
		fsType = *in.Filesystem.Root.Type
	}
	if in.RootFSType != nil || fsType != "" {
		if !slices.Contains(FilesystemTypes, fsType) {
			return nil, false, fmt.Errorf("%w: %s: root filesystem type %q: want one of %s", ErrInvalid, name, fsType, strings.Join(FilesystemTypes, ", "))
		}
		c.RootFSType = fsType
		c.Filesystem = &Filesystem{Root: &FilesystemRoot{Type: fsType}}
	}
	c.Kargs = in.Kargs
	c.KargDeletes = in.KargDeletes
	if in.Block != nil {
		if len(*in.Block) == 0 {
			return nil, false, fmt.Errorf("%w: %s: block: the list is empty", ErrInvalid, name)
		}
		for _, b := range *in.Block {
			if !slices.Contains(BlockSetups, b) {
				return nil, false, fmt.Errorf("%w: %s: block setup %q: want one of %s", ErrInvalid, name, b, strings.Join(BlockSetups, ", "))
			}
		}
		c.Block = *in.Block
	}
	if in.Stateroot != nil {
		if err := layout.CheckName("stateroot", *in.Stateroot); err != nil {
			return nil, false, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
		}
		c.Stateroot = *in.Stateroot
	}
	c.RootMountSpec, c.BootMountSpec = in.RootMountSpec, in.BootMountSpec
	if in.Bootloader != nil {
		if !slices.Contains(Bootloaders, *in.Bootloader) {
			return nil, false, fmt.Errorf("%w: %s: bootloader %q: want one of %s", ErrInvalid, name, *in.Bootloader, strings.Join(Bootloaders, ", "))
		}
		c.Bootloader = *in.Bootloader
	}
	return c, true, nil
}

// Merge applies o over c: o's keys win, kargs and karg-deletes are appended.
func (c *Config) Merge(o *Config) {
	if o.RootFSType != "" {
		c.RootFSType = o.RootFSType
		c.Filesystem = &Filesystem{Root: &FilesystemRoot{Type: o.RootFSType}}
	}
	c.Kargs = append(c.Kargs, o.Kargs...)
	c.KargDeletes = append(c.KargDeletes, o.KargDeletes...)
	if o.Block != nil {
		c.Block = o.Block
	}
	if o.MatchArchitectures != nil {
		c.MatchArchitectures = o.MatchArchitectures
	}
	if o.Stateroot != "" {
		c.Stateroot = o.Stateroot
	}
	if o.RootMountSpec != nil {
		c.RootMountSpec = o.RootMountSpec
	}
	if o.BootMountSpec != nil {
		c.BootMountSpec = o.BootMountSpec
	}
	if o.Bootloader != "" {
		c.Bootloader = o.Bootloader
	}
}

// Files lists the drop-ins that apply under root, in the order they are merged: a later
// directory's file shadows an earlier one of the same name, then by name.
func Files(root string) ([]string, error) {
	byName := map[string]string{}
	for _, d := range Dirs {
		dir := filepath.Join(root, d)
		ents, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading install configuration: %w", err)
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".toml") || e.IsDir() {
				continue
			}
			byName[e.Name()] = filepath.Join(dir, e.Name())
		}
	}
	names := make([]string, 0, len(byName))
	for n := range byName {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, byName[n])
	}
	return out, nil
}

// Load merges the drop-ins under root for arch (a kargs.d-style name such as x86_64).
// A root without any gives an empty configuration.
func Load(root, arch string) (*Config, error) {
	files, err := Files(root)
	if err != nil {
		return nil, err
	}
	c := &Config{}
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading install configuration: %w", err)
		}
		fc, ok, err := Parse(p, data, arch)
		if err != nil {
			return nil, err
		}
		if ok {
			c.Merge(fc)
		}
	}
	return c, nil
}
