// Package bls reads, writes and orders Boot Loader Specification type 1 entries
// (loader/entries/*.conf), whose sort order is the boot menu and whose first entry is the default.
package bls

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Keys with a meaning in the specification that Entry holds in fields.
const (
	KeyTitle        = "title"
	KeyVersion      = "version"
	KeyMachineID    = "machine-id"
	KeySortKey      = "sort-key"
	KeyLinux        = "linux"
	KeyInitrd       = "initrd"
	KeyOptions      = "options"
	KeyDevicetree   = "devicetree"
	KeyArchitecture = "architecture"
)

// Keys that, like linux, name what to boot; an entry needs one of them.
const (
	KeyEFI = "efi"
	KeyUKI = "uki"
)

var (
	// ErrSyntax is returned (wrapped) for a malformed entry file.
	ErrSyntax = errors.New("malformed boot entry")
	// ErrNoKernel is returned (wrapped) for an entry with none of linux, efi or uki.
	ErrNoKernel = errors.New("boot entry has no linux, efi or uki key")
)

// Field is a key the package has no field for (efi, devicetree-overlay, grub_users, x-…), kept so a
// rewrite does not lose what other tools put there.
type Field struct {
	Key   string
	Value string
}

// Entry is one type 1 boot entry.
type Entry struct {
	// Name is the file name in loader/entries ("bootc-2.conf"); it identifies the entry and is the
	// last tiebreaker when sorting. Parse does not require it to be set.
	Name string

	Title        string
	Version      string
	MachineID    string
	SortKey      string
	Linux        string
	Initrd       []string // in file order; all are loaded
	Options      []string // one element per options line; see Cmdline
	Devicetree   string
	Architecture string

	// Other holds the remaining keys in file order, repeated keys included.
	Other []Field
}

// Cmdline is the kernel command line: every options line joined by a space, as the specification says
// multiple options lines are concatenated.
func (e *Entry) Cmdline() string {
	return strings.Join(e.Options, " ")
}

// Get returns the value of the first Other field with key, for keys Entry has no field for.
func (e *Entry) Get(key string) (string, bool) {
	for _, f := range e.Other {
		if f.Key == key {
			return f.Value, true
		}
	}
	return "", false
}

// Parse reads an entry; name is the file name, used in errors and kept in Entry.Name.
func Parse(name string, data []byte) (Entry, error) {
	return Read(name, bytes.NewReader(data))
}

// Read is Parse on a reader.
//
// Each non-blank line that does not start with '#' is a key, whitespace, and a value running to the end
// of the line. Comments and blank lines are not kept. A key without a value, a repeated single-valued
// key, and an entry with nothing to boot are errors naming the file and line.
func Read(name string, r io.Reader) (Entry, error) {
	e := Entry{Name: name}
	seen := map[string]int{} // single-valued key -> line it was set on
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Boot loaders may end a line at a carriage return, so one inside a line would read
		// there as two lines; Validate refuses it for the same reason.
		if strings.ContainsRune(line, '\r') {
			return Entry{}, fmt.Errorf("parsing %s: line %d: %w: carriage return inside the line", name, lineNo, ErrSyntax)
		}
		key, value := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			key, value = line[:i], strings.TrimSpace(line[i+1:])
		}
		if value == "" {
			return Entry{}, fmt.Errorf("parsing %s: line %d: %w: key %q has no value", name, lineNo, ErrSyntax, key)
		}
		if dst := e.single(key); dst != nil {
			if prev, dup := seen[key]; dup {
				return Entry{}, fmt.Errorf("parsing %s: line %d: %w: key %q repeats line %d", name, lineNo, ErrSyntax, key, prev)
			}
			seen[key] = lineNo
			*dst = value
			continue
		}
		switch key {
		case KeyInitrd:
			e.Initrd = append(e.Initrd, value)
		case KeyOptions:
			e.Options = append(e.Options, value)
		default:
			e.Other = append(e.Other, Field{Key: key, Value: value})
		}
	}
	if err := sc.Err(); err != nil {
		return Entry{}, fmt.Errorf("parsing %s: line %d: %w", name, lineNo+1, err)
	}
	if !e.bootable() {
		return Entry{}, fmt.Errorf("parsing %s: %w", name, ErrNoKernel)
	}
	return e, nil
}

// single returns the field behind a single-valued key Entry models, or nil.
func (e *Entry) single(key string) *string {
	switch key {
	case KeyTitle:
		return &e.Title
	case KeyVersion:
		return &e.Version
	case KeyMachineID:
		return &e.MachineID
	case KeySortKey:
		return &e.SortKey
	case KeyLinux:
		return &e.Linux
	case KeyDevicetree:
		return &e.Devicetree
	case KeyArchitecture:
		return &e.Architecture
	}
	return nil
}

func (e *Entry) bootable() bool {
	if e.Linux != "" {
		return true
	}
	for _, f := range e.Other {
		if f.Key == KeyEFI || f.Key == KeyUKI {
			return true
		}
	}
	return false
}

// Marshal renders the entry in a fixed key order — title, version, machine-id, sort-key, linux,
// initrd…, options…, devicetree, architecture, then Other in order — one "key value" per line, so that
// rewriting an unchanged entry yields the same bytes. Empty fields are left out. It refuses an entry
// that would not parse back to itself.
func (e *Entry) Marshal() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	put := func(k, v string) {
		if v != "" {
			b.WriteString(k)
			b.WriteByte(' ')
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	put(KeyTitle, e.Title)
	put(KeyVersion, e.Version)
	put(KeyMachineID, e.MachineID)
	put(KeySortKey, e.SortKey)
	put(KeyLinux, e.Linux)
	for _, v := range e.Initrd {
		put(KeyInitrd, v)
	}
	for _, v := range e.Options {
		put(KeyOptions, v)
	}
	put(KeyDevicetree, e.Devicetree)
	put(KeyArchitecture, e.Architecture)
	for _, f := range e.Other {
		put(f.Key, f.Value)
	}
	return b.Bytes(), nil
}

// Validate checks that Marshal's output would parse back to e: values are single lines without
// surrounding whitespace, repeated values are non-empty, Other keys are well formed and not ones Entry
// has fields for, and something is bootable.
func (e *Entry) Validate() error {
	name := e.Name
	if name == "" {
		name = "boot entry"
	}
	check := func(key, value string, required bool) error {
		switch {
		case value == "" && required:
			return fmt.Errorf("validating %s: %w: key %q has an empty value", name, ErrSyntax, key)
		case strings.ContainsAny(value, "\n\r"):
			return fmt.Errorf("validating %s: %w: value of %q spans lines", name, ErrSyntax, key)
		case strings.TrimSpace(value) != value:
			return fmt.Errorf("validating %s: %w: value of %q has surrounding whitespace", name, ErrSyntax, key)
		}
		return nil
	}
	for _, kv := range [][2]string{
		{KeyTitle, e.Title}, {KeyVersion, e.Version}, {KeyMachineID, e.MachineID}, {KeySortKey, e.SortKey},
		{KeyLinux, e.Linux}, {KeyDevicetree, e.Devicetree}, {KeyArchitecture, e.Architecture},
	} {
		if err := check(kv[0], kv[1], false); err != nil {
			return err
		}
	}
	for _, v := range e.Initrd {
		if err := check(KeyInitrd, v, true); err != nil {
			return err
		}
	}
	for _, v := range e.Options {
		if err := check(KeyOptions, v, true); err != nil {
			return err
		}
	}
	for _, f := range e.Other {
		switch {
		case f.Key == "" || strings.ContainsAny(f.Key, " \t\n\r") || strings.HasPrefix(f.Key, "#"):
			return fmt.Errorf("validating %s: %w: bad key %q", name, ErrSyntax, f.Key)
		case e.single(f.Key) != nil || f.Key == KeyInitrd || f.Key == KeyOptions:
			return fmt.Errorf("validating %s: %w: key %q belongs in its own field, not Other", name, ErrSyntax, f.Key)
		}
		if err := check(f.Key, f.Value, true); err != nil {
			return err
		}
	}
	if !e.bootable() {
		return fmt.Errorf("validating %s: %w", name, ErrNoKernel)
	}
	return nil
}
