package bootcount

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"gobootc.dev/lib/greenboot"
	"gobootc.dev/lib/layout"
)

// DefaultTries is how many boots a new default entry gets when nothing configures it, as in
// greenboot.
const DefaultTries = 3

// MaxTries bounds the configured tries. systemd-boot could count far higher, but every failed
// try is a reboot, and GRUB's script has no arithmetic, so its side counts down through a table
// of values that this keeps short.
const MaxTries = 100

// Keys that set the tries.
const (
	// KeyTries is the drop-ins' key.
	KeyTries = "tries"
	// KeyGreenbootAttempts is greenboot's own key in greenboot.conf.
	KeyGreenbootAttempts = "GREENBOOT_MAX_BOOT_ATTEMPTS"
	// KeyGreenbootBoots is the key some vendors document for greenboot, which no greenboot
	// version read; it counts when KeyGreenbootAttempts is not set.
	KeyGreenbootBoots = "GREENBOOT_MAX_BOOTS"
)

// ErrInvalidConfig is returned (wrapped) for a drop-in or greenboot.conf whose tries setting is
// wrong: bad TOML, an unknown key, a value of the wrong type or out of range.
var ErrInvalidConfig = errors.New("invalid boot counting configuration")

// Sources are where the tries are configured, highest precedence first.
type Sources struct {
	// Admin is the administrator's drop-in directory (/etc/bootc/bootcount.d).
	Admin string
	// Greenboot is greenboot's configuration file (/etc/greenboot/greenboot.conf).
	Greenboot string
	// Vendor is the image's drop-in directory (/usr/lib/bootc/bootcount.d).
	Vendor string
}

// SourcesIn returns the sources of a tree whose /usr is under root and whose /etc is etc: "/"
// and "/etc" on a running host, a deployment and its own /etc before it boots.
func SourcesIn(root, etc string) Sources {
	return Sources{
		Admin:     layout.BootcountAdminDir(etc),
		Greenboot: layout.GreenbootConf(etc),
		Vendor:    layout.BootcountVendorDir(root),
	}
}

// Tries is the configured number of tries and where it comes from.
type Tries struct {
	N int
	// Source is the file that set N and Key the key in it; both are empty for DefaultTries.
	Source string
	Key    string
}

func (t Tries) String() string {
	if t.Source == "" {
		return fmt.Sprintf("%d (default)", t.N)
	}
	return fmt.Sprintf("%d (%s in %s)", t.N, t.Key, t.Source)
}

// LoadTries reads the sources and returns the tries a new default entry gets: the
// administrator's drop-ins, then greenboot.conf, then the image's drop-ins, then DefaultTries
// (see the package documentation). Missing files and directories are no error. Every setting
// read is checked, including those a higher source overrides, so a mistake is reported where it
// is rather than when the file above it goes away.
func LoadTries(s Sources) (Tries, error) {
	admin, adminNames, err := loadDropins(s.Admin, nil)
	if err != nil {
		return Tries{}, err
	}
	green, err := loadGreenboot(s.Greenboot)
	if err != nil {
		return Tries{}, err
	}
	vendor, _, err := loadDropins(s.Vendor, adminNames)
	if err != nil {
		return Tries{}, err
	}
	for _, t := range []*Tries{admin, green, vendor} {
		if t != nil {
			return *t, nil
		}
	}
	return Tries{N: DefaultTries}, nil
}

// loadDropins reads dir's *.toml files in name order, skipping those named in masked, and
// returns the last tries set (nil if none) and the names of the files it found.
func loadDropins(dir string, masked map[string]bool) (*Tries, map[string]bool, error) {
	if dir == "" {
		return nil, nil, nil
	}
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading boot counting drop-ins: %w", err)
	}
	var names []string
	found := map[string]bool{}
	for _, de := range des {
		n := de.Name()
		if len(n) > len(".toml") && strings.HasSuffix(n, ".toml") && !strings.HasPrefix(n, ".") {
			names = append(names, n)
			found[n] = true
		}
	}
	slices.Sort(names)
	var last *Tries
	for _, n := range names {
		if masked[n] {
			continue
		}
		path := filepath.Join(dir, n)
		data, ok, err := readDropin(dir, n)
		if err != nil {
			return nil, nil, fmt.Errorf("reading boot counting drop-in %s: %w", path, err)
		}
		if !ok {
			continue
		}
		t, err := ParseDropin(path, data)
		if err != nil {
			return nil, nil, err
		}
		if t != nil {
			last = t
		}
	}
	return last, found, nil
}

// readDropin reads dir/name without following a symlink out of dir (an error); a symlink to
// /dev/null, the usual way to mask a drop-in, reads as empty. ok is false for what is not a
// regular file, a dangling symlink included.
func readDropin(dir, name string) (data []byte, ok bool, err error) {
	fi, err := os.Lstat(filepath.Join(dir, name))
	if err != nil {
		return nil, false, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if target, err := os.Readlink(filepath.Join(dir, name)); err == nil && target == os.DevNull {
			return nil, true, nil
		}
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	st, err := r.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil // a dangling symlink: nothing there
	}
	if err != nil {
		return nil, false, err
	}
	if !st.Mode().IsRegular() {
		return nil, false, nil
	}
	data, err = r.ReadFile(name)
	return data, err == nil, err
}

// ParseDropin reads one drop-in; name is used in errors. It returns nil when the file sets
// nothing.
func ParseDropin(name string, data []byte) (*Tries, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		// BurntSushi's errors carry the line; keep them to one line.
		msg := strings.Join(strings.Fields(err.Error()), " ")
		return nil, fmt.Errorf("%s: %w: %s", name, ErrInvalidConfig, msg)
	}
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k != KeyTries {
			return nil, fmt.Errorf("%s: %w: unknown key %q (the one key is %q)", name, ErrInvalidConfig, k, KeyTries)
		}
	}
	v, ok := doc[KeyTries]
	if !ok {
		return nil, nil
	}
	n, ok := v.(int64)
	if !ok {
		return nil, fmt.Errorf("%s: %w: %s = %s: want an integer from 1 to %d", name, ErrInvalidConfig, KeyTries, tomlValue(v), MaxTries)
	}
	if n < 1 || n > MaxTries {
		return nil, fmt.Errorf("%s: %w: %s = %d: want an integer from 1 to %d", name, ErrInvalidConfig, KeyTries, n, MaxTries)
	}
	return &Tries{N: int(n), Source: name, Key: KeyTries}, nil
}

// tomlValue shows a decoded value in errors, briefly.
func tomlValue(v any) string {
	s := fmt.Sprintf("%#v", v)
	if str, ok := v.(string); ok {
		s = fmt.Sprintf("%q", str)
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// loadGreenboot reads greenboot.conf; a missing file sets nothing.
func loadGreenboot(path string) (*Tries, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading greenboot configuration: %w", err)
	}
	return ParseGreenboot(path, data)
}

// ParseGreenboot reads the tries from greenboot.conf's text, parsed by the greenboot package as
// bash would source it; name is used in errors. It returns nil when neither key is set, or set
// empty, which greenboot treats as unset. Both keys are checked; GREENBOOT_MAX_BOOT_ATTEMPTS
// wins when both are set.
func ParseGreenboot(name string, data []byte) (*Tries, error) {
	conf := greenboot.Parse(data)
	var found *Tries
	for _, key := range []string{KeyGreenbootAttempts, KeyGreenbootBoots} {
		v, ok := conf.Vars[key]
		if !ok || (!v.Array && (len(v.Values) == 0 || v.Values[0] == "")) {
			continue
		}
		bad := func(why string) error {
			return fmt.Errorf("%s: %w: %s: %s", name, ErrInvalidConfig, key, why)
		}
		if v.Array {
			return nil, bad("an array, want a number")
		}
		value := v.Values[0]
		if strings.ContainsAny(value, "$`") {
			return nil, bad(fmt.Sprintf("%q uses shell expansion, which bootc does not evaluate; write the number", value))
		}
		n, ok := parseCount(value)
		if !ok || n < 1 || n > MaxTries {
			return nil, bad(fmt.Sprintf("%q: want an integer from 1 to %d", value, MaxTries))
		}
		if found == nil {
			found = &Tries{N: n, Source: name, Key: key}
		}
	}
	return found, nil
}
