package bootcount

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/google/renameio/v2"

	"gobootc.dev/lib/durable"
)

// EnvSize is the size of a GRUB environment block file.
//
// GRUB writes the block in place: save_env looks up the sectors the file occupies and
// overwrites them, so it can neither create the file nor change its size, and it refuses a file
// it cannot write that way (btrfs keeps small files inline and checksums data: a block GRUB is
// to write must live on a filesystem such as ext4 or FAT). Whatever size the file
// gets when it is created is therefore its capacity for good, and every GRUB tool creates it
// with 1024 bytes. A block of any other size was not written by GRUB's tools, or is the trace of
// an interrupted or foreign write, so this package refuses it rather than guess.
const EnvSize = 1024

// envHeader starts every environment block; GRUB refuses a block without it.
const envHeader = "# GRUB Environment Block\n"

// Variables of greenboot's GRUB boot counting, which health checks read with grub2-editenv.
const (
	// VarBootCounter is the tries left for the new default entry: unset when no trial is under
	// way, counted down by GRUB before each try, -1 once GRUB gave up and booted the previous
	// deployment.
	VarBootCounter = "boot_counter"
	// VarBootSuccess is 1 when the last boot was blessed; GRUB sets it to 0 on every boot.
	VarBootSuccess = "boot_success"
	// VarTrial names the deployment on trial ("<stateroot>/<id>"): GRUB's menu counts only
	// while it names the menu's default.
	VarTrial = "bootc_trial"
)

var (
	// ErrEnvInvalid is returned (wrapped) for a block that is not a well-formed GRUB
	// environment block, and for a variable whose value makes no sense.
	ErrEnvInvalid = errors.New("invalid GRUB environment block")
	// ErrEnvFull is returned (wrapped) when the variables no longer fit in EnvSize bytes.
	ErrEnvFull = errors.New("GRUB environment block full")
)

// Env is a GRUB environment block: its variables and comment lines in file order. The zero
// value is an empty block, as `grub-editenv FILE create` makes it.
type Env struct {
	lines []envLine
}

// envLine is a variable, or a comment line (GRUB skips lines starting with '#') kept verbatim.
type envLine struct {
	comment     string // the raw line without its newline, when the line is a comment
	name, value string
}

// ParseEnv reads a block: exactly EnvSize bytes, the header line, then variable lines
// (name=value, with '\' escaping the next byte as GRUB writes a '\' or a newline in a value) or
// comment lines, then '#' padding to the end. name is used in errors.
//
// A block GRUB's own parser would give up on (a line without '=', a value running into the
// padding, padding of other bytes, which GRUB's save_env refuses to write to) is an error, as is
// a NUL byte anywhere, which GRUB would read as the end of a name or value.
func ParseEnv(name string, data []byte) (*Env, error) {
	fail := func(format string, args ...any) (*Env, error) {
		return nil, fmt.Errorf("reading %s: %w: %s", name, ErrEnvInvalid, fmt.Sprintf(format, args...))
	}
	if len(data) != EnvSize {
		return fail("%d bytes, want %d", len(data), EnvSize)
	}
	if !bytes.HasPrefix(data, []byte(envHeader)) {
		return fail("no %q header", strings.TrimSuffix(envHeader, "\n"))
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return fail("NUL byte at offset %d", i)
	}
	e := &Env{}
	p := len(envHeader)
	for p < len(data) {
		end := lineEnd(data, p)
		if data[p] == '#' {
			if end < 0 {
				// The padding: GRUB finds its free space by walking back over '#'.
				if i := bytes.IndexFunc(data[p:], func(r rune) bool { return r != '#' }); i >= 0 {
					return fail("padding holds a byte other than '#' at offset %d", p+i)
				}
				break
			}
			e.lines = append(e.lines, envLine{comment: string(data[p:end])})
			p = end + 1
			continue
		}
		if end < 0 {
			return fail("variable at offset %d runs to the end of the block", p)
		}
		line := data[p:end]
		eq := bytes.IndexByte(line, '=')
		switch {
		case eq < 0:
			return fail("line at offset %d has no '='", p)
		case eq == 0:
			return fail("line at offset %d has an empty name", p)
		case bytes.IndexByte(line[:eq], '\n') >= 0:
			return fail("name at offset %d spans lines", p)
		}
		e.lines = append(e.lines, envLine{name: string(line[:eq]), value: unescape(line[eq+1:])})
		p = end + 1
	}
	return e, nil
}

// lineEnd is the index of the newline ending the line that starts at p, skipping escaped bytes
// as GRUB does, or -1 when the block ends first.
func lineEnd(data []byte, p int) int {
	for p < len(data) {
		switch data[p] {
		case '\n':
			return p
		case '\\':
			p += 2
		default:
			p++
		}
	}
	return -1
}

func unescape(v []byte) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

func escape(v string) string {
	if !strings.ContainsAny(v, "\\\n") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' || v[i] == '\n' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// Marshal renders the block, EnvSize bytes, as GRUB's tools lay it out.
func (e *Env) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(envHeader)
	for _, l := range e.lines {
		if l.name == "" {
			b.WriteString(l.comment)
		} else {
			b.WriteString(l.name)
			b.WriteByte('=')
			b.WriteString(escape(l.value))
		}
		b.WriteByte('\n')
	}
	if b.Len() > EnvSize {
		return nil, fmt.Errorf("%w: the variables take %d bytes, the block holds %d", ErrEnvFull, b.Len(), EnvSize)
	}
	b.Write(bytes.Repeat([]byte{'#'}, EnvSize-b.Len()))
	return b.Bytes(), nil
}

// Get returns a variable's value. Should a block name a variable twice, the last one counts, as
// GRUB's load_env sets them in order.
func (e *Env) Get(name string) (string, bool) {
	for i := len(e.lines) - 1; i >= 0; i-- {
		if e.lines[i].name == name {
			return e.lines[i].value, true
		}
	}
	return "", false
}

// envNameRe is what GRUB's script can refer to as $name; Set writes no other names.
var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Set gives a variable a value: the first line naming it is rewritten in place and any later one
// removed (GRUB would rewrite only the first, and load_env would still read the last), or a new
// line is added at the end. It refuses a name GRUB's script cannot use, a value with a NUL
// byte, and a change that would not fit in the block (ErrEnvFull), leaving e unchanged.
func (e *Env) Set(name, value string) error {
	if !envNameRe.MatchString(name) {
		return fmt.Errorf("setting GRUB variable %q: %w: want letters, digits and '_', not starting with a digit", name, ErrEnvInvalid)
	}
	if strings.IndexByte(value, 0) >= 0 {
		return fmt.Errorf("setting GRUB variable %s: %w: the value holds a NUL byte", name, ErrEnvInvalid)
	}
	next := &Env{lines: make([]envLine, 0, len(e.lines)+1)}
	found := false
	for _, l := range e.lines {
		if l.name != name {
			next.lines = append(next.lines, l)
		} else if !found {
			next.lines = append(next.lines, envLine{name: name, value: value})
			found = true
		}
	}
	if !found {
		next.lines = append(next.lines, envLine{name: name, value: value})
	}
	if _, err := next.Marshal(); err != nil {
		return fmt.Errorf("setting GRUB variable %s: %w", name, err)
	}
	e.lines = next.lines
	return nil
}

// Unset removes every line naming the variable.
func (e *Env) Unset(name string) {
	kept := e.lines[:0]
	for _, l := range e.lines {
		if l.name != name {
			kept = append(kept, l)
		}
	}
	e.lines = kept
}

// BootCounter returns greenboot's boot_counter: the tries left, or -1 after a fallback; ok is
// false when it is unset (no trial under way). A value that is not an integer from -1 up is an
// error.
func (e *Env) BootCounter() (n int, ok bool, err error) {
	v, ok := e.Get(VarBootCounter)
	if !ok {
		return 0, false, nil
	}
	n, err = parseEnvInt(v)
	if err != nil || n < -1 {
		return 0, true, fmt.Errorf("GRUB variable %s=%q: %w: want an integer from -1 to %d", VarBootCounter, v, ErrEnvInvalid, MaxCounter)
	}
	return n, true, nil
}

// SetBootCounter sets boot_counter; n is the tries left, or -1 for "fell back".
func (e *Env) SetBootCounter(n int) error {
	if n < -1 || n > MaxCounter {
		return fmt.Errorf("setting GRUB variable %s to %d: %w: want -1 to %d", VarBootCounter, n, ErrEnvInvalid, MaxCounter)
	}
	return e.Set(VarBootCounter, strconv.Itoa(n))
}

// UnsetBootCounter ends the trial: no counting on the next boots.
func (e *Env) UnsetBootCounter() { e.Unset(VarBootCounter) }

// BootSuccess returns greenboot's boot_success: good is true for "1", false for "0"; ok is
// false when it is unset. Any other value is an error.
func (e *Env) BootSuccess() (good, ok bool, err error) {
	v, ok := e.Get(VarBootSuccess)
	switch {
	case !ok:
		return false, false, nil
	case v == "1":
		return true, true, nil
	case v == "0":
		return false, true, nil
	}
	return false, true, fmt.Errorf("GRUB variable %s=%q: %w: want 0 or 1", VarBootSuccess, v, ErrEnvInvalid)
}

// SetBootSuccess sets boot_success to 1 (good) or 0.
func (e *Env) SetBootSuccess(good bool) error {
	v := "0"
	if good {
		v = "1"
	}
	return e.Set(VarBootSuccess, v)
}

// parseEnvInt reads an optional '-' and decimal digits, nothing else (strconv.Atoi would also
// take a '+', which GRUB's tests do not).
func parseEnvInt(v string) (int, error) {
	digits := strings.TrimPrefix(v, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" || len(digits) > 10 {
		return 0, strconv.ErrSyntax
	}
	return strconv.Atoi(v)
}

// ReadEnv reads and parses the block at path.
func ReadEnv(path string) (*Env, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading GRUB environment block: %w", err)
	}
	defer f.Close()
	// One byte more than a block is enough to tell a file that is too long.
	data, err := io.ReadAll(io.LimitReader(f, EnvSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading GRUB environment block %s: %w", path, err)
	}
	return ParseEnv(path, data)
}

// WriteEnv writes e to path. The block goes to a temporary file in the same directory, which is
// fsynced and renamed over path, and the directory is fsynced: after a crash GRUB finds the old
// block or the new one. (A boot loader reading ext4 or xfs without replaying the journal sees
// the rename once the journal is written back; the bootloader package's entry-set switch does
// that checkpoint, so a block written before a switch is covered by it.)
//
// GRUB only ever rewrites its block in place and never creates it, so WriteEnv is also what
// creates a missing one. When the filesystem has no room for the temporary file (a full ESP),
// an existing block is overwritten in place, as GRUB itself does: the same EnvSize bytes over
// the same blocks, which needs no free space.
func WriteEnv(path string, e *Env) error {
	data, err := e.Marshal()
	if err != nil {
		return fmt.Errorf("writing GRUB environment block %s: %w", path, err)
	}
	err = replaceEnv(path, data)
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		if ierr := overwriteEnv(path, data); ierr != nil {
			return fmt.Errorf("writing GRUB environment block %s: %w (and in place: %w)", path, err, ierr)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("writing GRUB environment block %s: %w", path, err)
	}
	return nil
}

// newPendingFile is renameio's, replaced in tests to run out of space.
var newPendingFile = renameio.NewPendingFile

func replaceEnv(path string, data []byte) error {
	dir := filepath.Dir(path)
	pf, err := newPendingFile(path, renameio.WithTempDir(dir), renameio.WithPermissions(0o644))
	if err != nil {
		return err
	}
	defer pf.Cleanup()
	// FAT (an ESP) has no per-file modes and may refuse chmod; the mount options decide there.
	if err := pf.Chmod(0o644); err != nil && !errors.Is(err, syscall.EPERM) {
		return err
	}
	if _, err := pf.Write(data); err != nil {
		return err
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return err
	}
	return durable.Sync(dir)
}

// overwriteEnv writes data over an existing block of the same size.
func overwriteEnv(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != int64(len(data)) {
		err = fmt.Errorf("%w: the file holds %d bytes, want %d", ErrEnvInvalid, fi.Size(), len(data))
	}
	if err == nil {
		_, err = f.WriteAt(data, 0)
	}
	if err != nil {
		f.Close()
		return err
	}
	return durable.Close(f)
}
