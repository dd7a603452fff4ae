// Package cmdline parses, edits and renders Linux kernel command lines.
//
// Parsing follows the kernel's own splitter (next_arg in lib/cmdline.c):
// arguments are separated by runs of unquoted whitespace, a double quote
// toggles quoting anywhere in an argument, and only a quote that opens the
// whole argument or the value (with its closing partner at the very end) is
// stripped when the key and value are decoded. Each parsed argument keeps its
// original text, so an argument nobody touched is written back byte for byte;
// boot entries edited by other tools (rpm-ostree, grubby, an admin) must not
// change under us just because we re-rendered them.
//
// Keys compare with '-' and '_' treated as the same character, as the kernel
// does when it matches parameters; values always compare exactly.
package cmdline

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrEmptyKey means an argument has no key, as in "=foo" or `""`.
	ErrEmptyKey = errors.New("empty key")
	// ErrUnterminatedQuote means a double quote is never closed.
	ErrUnterminatedQuote = errors.New("unterminated quote")
	// ErrInvalidArg means an argument cannot be represented on a kernel
	// command line (a quote or '=' where the kernel has no way to escape it,
	// or text that is not exactly one argument).
	ErrInvalidArg = errors.New("invalid argument")
)

// initSeparator ends the kernel's own arguments; the kernel hands everything
// after it to init untouched.
const initSeparator = "--"

// Arg is one kernel argument: a key, and a value when the argument had an
// '='. "quiet", "quiet=" and "quiet=1" are three different arguments. The
// zero Arg is not a valid argument; get one from Parse, ParseArg, NewArg or
// NewFlag.
type Arg struct {
	key      string
	value    string
	hasValue bool
	// raw is the argument as written on the command line, quotes included.
	raw string
}

// Key returns the decoded key (surrounding quotes removed).
func (a Arg) Key() string { return a.key }

// Value returns the decoded value; it is "" both for "key=" and for "key",
// which HasValue tells apart.
func (a Arg) Value() string { return a.value }

// HasValue reports whether the argument had an '='.
func (a Arg) HasValue() bool { return a.hasValue }

// String returns the argument as it appears on the command line: the
// original text for a parsed argument, quoted where needed for a
// constructed one.
func (a Arg) String() string { return a.raw }

// Equal reports whether a and b are the same argument: equivalent keys, the
// same value and both with or both without '='. How either was quoted does
// not matter.
func (a Arg) Equal(b Arg) bool {
	return a.hasValue == b.hasValue && a.value == b.value && KeyEqual(a.key, b.key)
}

// KeyEqual reports whether two keys name the same parameter, treating '-'
// and '_' as equal. The comparison is otherwise exact (case-sensitive).
func KeyEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if dashToUnderscore(a[i]) != dashToUnderscore(b[i]) {
			return false
		}
	}
	return true
}

func dashToUnderscore(c byte) byte {
	if c == '-' {
		return '_'
	}
	return c
}

// NewArg builds the argument key=value. A value containing whitespace is
// rendered quoted, as key="value". The kernel has no escape character, so
// a key may not contain whitespace, '=' or '"', and a value may not contain
// '"'.
func NewArg(key, value string) (Arg, error) {
	if err := checkKey(key); err != nil {
		return Arg{}, err
	}
	if strings.ContainsRune(value, '"') {
		return Arg{}, fmt.Errorf("building argument %s: value %q: %w: contains a double quote", key, value, ErrInvalidArg)
	}
	raw := key + "=" + value
	if strings.IndexFunc(value, isSpaceRune) >= 0 {
		raw = key + `="` + value + `"`
	}
	return Arg{key: key, value: value, hasValue: true, raw: raw}, nil
}

// NewFlag builds an argument that is a bare key with no '=', like "quiet".
func NewFlag(key string) (Arg, error) {
	if err := checkKey(key); err != nil {
		return Arg{}, err
	}
	return Arg{key: key, raw: key}, nil
}

func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("building argument: %w", ErrEmptyKey)
	case key == initSeparator:
		return fmt.Errorf("building argument: key %q: %w: it separates init's arguments", key, ErrInvalidArg)
	case strings.IndexFunc(key, isSpaceRune) >= 0:
		return fmt.Errorf("building argument: key %q: %w: contains whitespace", key, ErrInvalidArg)
	case strings.ContainsAny(key, `="`):
		return fmt.Errorf("building argument: key %q: %w: contains '=' or a double quote", key, ErrInvalidArg)
	}
	return nil
}

// ParseArg parses text holding exactly one argument, quoted or not, as it
// would appear on a command line (`key="a b"` or `"key=a b"`).
func ParseArg(s string) (Arg, error) {
	c, err := Parse(s)
	if err != nil {
		return Arg{}, err
	}
	if c.hasInit || len(c.args) != 1 {
		return Arg{}, fmt.Errorf("parsing argument %q: %w: want exactly one argument, found %d", s, ErrInvalidArg, len(c.args))
	}
	return c.args[0], nil
}

// decode splits one raw argument into key and value the way the kernel
// does: a leading quote opens the whole argument, the key ends at the first
// '=', a quote opening the value is dropped, and a matching quote at the
// very end is dropped. Quotes anywhere else are part of the text.
func decode(raw string) (Arg, error) {
	a := Arg{raw: raw}
	body, quoted := strings.CutPrefix(raw, `"`)
	key, value, hasValue := strings.Cut(body, "=")
	if !hasValue {
		if quoted {
			key = strings.TrimSuffix(key, `"`)
		}
	} else if v, ok := strings.CutPrefix(value, `"`); ok || quoted {
		value = strings.TrimSuffix(v, `"`)
	}
	if key == "" {
		return Arg{}, ErrEmptyKey
	}
	a.key, a.value, a.hasValue = key, value, hasValue
	return a, nil
}

// isSpace matches the kernel's isspace() for ASCII, the only whitespace the
// kernel splits on.
func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\v', '\f', '\r':
		return true
	}
	return false
}

func isSpaceRune(r rune) bool { return r < 0x80 && isSpace(byte(r)) }

// Cmdline is an ordered list of kernel arguments plus, when the line had a
// standalone "--", the text passed through to init. Keys may repeat
// (console=ttyS0 console=tty0 is two consoles). The zero value is an empty
// command line ready to use.
type Cmdline struct {
	args []Arg
	// hasInit records a "--" even when nothing follows it, so that the line
	// renders back the way it was written.
	hasInit bool
	init    string
}

// Parse splits a kernel command line into arguments. Everything after a
// standalone "--" is kept verbatim as the init part and not parsed. An
// unclosed quote or an argument without a key is an error naming the byte
// offset where it starts.
func Parse(s string) (*Cmdline, error) {
	c := &Cmdline{}
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i == len(s) {
			return c, nil
		}
		start, quoteAt, inQuote := i, -1, false
		for ; i < len(s); i++ {
			if isSpace(s[i]) && !inQuote {
				break
			}
			if s[i] == '"' {
				inQuote = !inQuote
				if inQuote {
					quoteAt = i
				}
			}
		}
		if inQuote {
			return nil, fmt.Errorf("parsing kernel command line: %w opened at byte %d", ErrUnterminatedQuote, quoteAt)
		}
		raw := s[start:i]
		a, err := decode(raw)
		if err != nil {
			return nil, fmt.Errorf("parsing kernel command line: argument %q at byte %d: %w", raw, start, err)
		}
		// The kernel recognises the separator after decoding, so a quoted
		// "--" counts too.
		if a.key == initSeparator && !a.hasValue {
			c.hasInit = true
			c.init = strings.TrimFunc(s[i:], isSpaceRune)
			return c, nil
		}
		c.args = append(c.args, a)
	}
}

// FromArgs builds a command line from arguments given one per element, as
// a user passes them to a repeated --karg flag. An element is one argument
// even if its value has whitespace: "k=a b" becomes k="a b". An element
// that contains a double quote is taken as already quoted and must parse as
// exactly one argument. An element "--" starts the init part; the elements
// after it are joined with single spaces.
func FromArgs(args []string) (*Cmdline, error) {
	c := &Cmdline{}
	for i, s := range args {
		if s == initSeparator {
			c.hasInit = true
			// Trimmed as Parse trims it, so the line reads back the same.
			c.init = strings.TrimFunc(strings.Join(args[i+1:], " "), isSpaceRune)
			return c, nil
		}
		var (
			a   Arg
			err error
		)
		switch key, value, hasValue := strings.Cut(s, "="); {
		case strings.ContainsRune(s, '"'):
			a, err = ParseArg(s)
		case hasValue:
			a, err = NewArg(key, value)
		default:
			a, err = NewFlag(key)
		}
		if err != nil {
			return nil, fmt.Errorf("argument %d %q: %w", i+1, s, err)
		}
		c.args = append(c.args, a)
	}
	return c, nil
}

// Args returns a copy of the arguments, in order, without the init part.
func (c *Cmdline) Args() []Arg {
	if c == nil {
		return nil
	}
	return append([]Arg(nil), c.args...)
}

// Len returns the number of arguments, not counting the init part.
func (c *Cmdline) Len() int {
	if c == nil {
		return 0
	}
	return len(c.args)
}

// Init returns the text after a standalone "--", and whether there was one.
func (c *Cmdline) Init() (string, bool) {
	if c == nil {
		return "", false
	}
	return c.init, c.hasInit
}

// Clone returns an independent copy.
func (c *Cmdline) Clone() *Cmdline {
	if c == nil {
		return &Cmdline{}
	}
	return &Cmdline{args: c.Args(), hasInit: c.hasInit, init: c.init}
}

// String renders the command line with single spaces between arguments,
// each in its original form, followed by "--" and the init part if the
// line had one.
func (c *Cmdline) String() string {
	if c == nil {
		return ""
	}
	parts := make([]string, 0, len(c.args)+2)
	for _, a := range c.args {
		parts = append(parts, a.raw)
	}
	if c.hasInit {
		parts = append(parts, initSeparator)
		if c.init != "" {
			parts = append(parts, c.init)
		}
	}
	return strings.Join(parts, " ")
}

// Get returns the values of every argument with the given key, in order.
// An argument without '=' contributes "".
func (c *Cmdline) Get(key string) []string {
	var values []string
	for _, a := range c.Args() {
		if KeyEqual(a.key, key) {
			values = append(values, a.value)
		}
	}
	return values
}

// Has reports whether any argument has the given key.
func (c *Cmdline) Has(key string) bool {
	for _, a := range c.Args() {
		if KeyEqual(a.key, key) {
			return true
		}
	}
	return false
}

// Contains reports whether an argument equal to a (see Arg.Equal) is present.
func (c *Cmdline) Contains(a Arg) bool {
	return c.index(a) >= 0
}

func (c *Cmdline) index(a Arg) int {
	if c == nil {
		return -1
	}
	for i, b := range c.args {
		if b.Equal(a) {
			return i
		}
	}
	return -1
}

// Append adds arguments at the end, before any init part. Duplicates are
// kept: the kernel allows a key more than once. The zero Arg is refused
// because it would render as nothing.
func (c *Cmdline) Append(args ...Arg) error {
	for _, a := range args {
		if a.key == "" {
			return fmt.Errorf("appending argument: %w", ErrEmptyKey)
		}
	}
	c.args = append(c.args, args...)
	return nil
}

// Remove deletes every argument with the given key, whatever its value,
// and returns how many it removed.
func (c *Cmdline) Remove(key string) int {
	if c == nil {
		return 0
	}
	kept := c.args[:0]
	for _, a := range c.args {
		if !KeyEqual(a.key, key) {
			kept = append(kept, a)
		}
	}
	n := len(c.args) - len(kept)
	clear(c.args[len(kept):])
	c.args = kept
	return n
}

// RemoveExact deletes the first argument equal to a and reports whether
// there was one. Only one occurrence goes because an exact duplicate on a
// command line usually has two owners, for example the image's kargs.d and
// an administrator who added the same argument by hand; when one owner
// withdraws its copy, the other's must stay. Call it in a loop to remove
// every occurrence.
func (c *Cmdline) RemoveExact(a Arg) bool {
	i := c.index(a)
	if i < 0 {
		return false
	}
	c.args = append(c.args[:i], c.args[i+1:]...)
	return true
}

// Equal reports whether both lines have equal arguments (see Arg.Equal) in
// the same order and the same init part.
func (c *Cmdline) Equal(other *Cmdline) bool {
	if c.Len() != other.Len() {
		return false
	}
	ci, cok := c.Init()
	oi, ook := other.Init()
	if ci != oi || cok != ook {
		return false
	}
	for i := range c.Len() {
		if !c.args[i].Equal(other.args[i]) {
			return false
		}
	}
	return true
}
