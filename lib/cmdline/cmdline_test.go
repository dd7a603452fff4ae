package cmdline

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// view is an argument flattened for comparison in tables.
type view struct {
	Key, Value string
	HasValue   bool
	Raw        string
}

func views(c *Cmdline) []view {
	var out []view
	for _, a := range c.Args() {
		out = append(out, view{a.Key(), a.Value(), a.HasValue(), a.String()})
	}
	return out
}

func mustParse(t *testing.T, s string) *Cmdline {
	t.Helper()
	c, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return c
}

func mustArg(t *testing.T, s string) Arg {
	t.Helper()
	a, err := ParseArg(s)
	if err != nil {
		t.Fatalf("ParseArg(%q): %v", s, err)
	}
	return a
}

func TestParse(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		want     []view
		init     string
		hasInit  bool
		rendered string // String(); "" means same as in
	}{
		{name: "empty", in: "", want: nil},
		{name: "only whitespace", in: " \t\n ", want: nil, rendered: ""},
		{name: "flag", in: "quiet", want: []view{{"quiet", "", false, "quiet"}}},
		{name: "empty value", in: "quiet=", want: []view{{"quiet", "", true, "quiet="}}},
		{name: "key value", in: "root=UUID=1234", want: []view{{"root", "UUID=1234", true, "root=UUID=1234"}}},
		{
			name: "several",
			in:   "root=/dev/vda3 ro console=ttyS0,115200n8 quiet",
			want: []view{
				{"root", "/dev/vda3", true, "root=/dev/vda3"},
				{"ro", "", false, "ro"},
				{"console", "ttyS0,115200n8", true, "console=ttyS0,115200n8"},
				{"quiet", "", false, "quiet"},
			},
		},
		{
			name:     "mixed whitespace runs",
			in:       "  a=1 \t\tb\n\nc=3\r\n",
			want:     []view{{"a", "1", true, "a=1"}, {"b", "", false, "b"}, {"c", "3", true, "c=3"}},
			rendered: "a=1 b c=3",
		},
		{name: "quoted value", in: `k="a b"`, want: []view{{"k", "a b", true, `k="a b"`}}},
		{name: "whole arg quoted", in: `"k=a b"`, want: []view{{"k", "a b", true, `"k=a b"`}}},
		{name: "quoted flag", in: `"quiet"`, want: []view{{"quiet", "", false, `"quiet"`}}},
		{name: "quoted flag with space", in: `"a b"`, want: []view{{"a b", "", false, `"a b"`}}},
		{name: "quoted empty value", in: `k=""`, want: []view{{"k", "", true, `k=""`}}},
		{name: "quoted value without space", in: `k="v"`, want: []view{{"k", "v", true, `k="v"`}}},
		{
			name: "quote in the middle stays",
			in:   `k=a"b c"d x`,
			want: []view{{"k", `a"b c"d`, true, `k=a"b c"d`}, {"x", "", false, "x"}},
		},
		{
			name: "opening value quote without closing at end",
			in:   `k="a b"c`,
			want: []view{{"k", `a b"c`, true, `k="a b"c`}},
		},
		{name: "equals inside quoted value", in: `k="a=b c"`, want: []view{{"k", "a=b c", true, `k="a=b c"`}}},
		{
			name: "quoted args among others",
			in:   `ro dyndbg="file drm* +p" "x=1 2" rw`,
			want: []view{
				{"ro", "", false, "ro"},
				{"dyndbg", "file drm* +p", true, `dyndbg="file drm* +p"`},
				{"x", "1 2", true, `"x=1 2"`},
				{"rw", "", false, "rw"},
			},
		},
		{name: "dash key kept as written", in: "rd.luks-uuid=1", want: []view{{"rd.luks-uuid", "1", true, "rd.luks-uuid=1"}}},
		{
			name: "duplicate keys kept in order",
			in:   "console=ttyS0 console=tty0 console=ttyS0",
			want: []view{
				{"console", "ttyS0", true, "console=ttyS0"},
				{"console", "tty0", true, "console=tty0"},
				{"console", "ttyS0", true, "console=ttyS0"},
			},
		},
		{
			name:    "init part kept verbatim",
			in:      `quiet -- single  "x y" --foo`,
			want:    []view{{"quiet", "", false, "quiet"}},
			init:    `single  "x y" --foo`,
			hasInit: true,
		},
		{
			name:    "unterminated quote after separator is init's business",
			in:      `a -- "b`,
			want:    []view{{"a", "", false, "a"}},
			init:    `"b`,
			hasInit: true,
		},
		{name: "separator with nothing after", in: "a --", want: []view{{"a", "", false, "a"}}, hasInit: true},
		{
			name:     "trailing whitespace after init trimmed",
			in:       "a -- b  ",
			want:     []view{{"a", "", false, "a"}},
			init:     "b",
			hasInit:  true,
			rendered: "a -- b",
		},
		{name: "separator only", in: "--", hasInit: true},
		{
			name:     "quoted separator counts",
			in:       `a "--" b`,
			want:     []view{{"a", "", false, "a"}},
			init:     "b",
			hasInit:  true,
			rendered: "a -- b",
		},
		{name: "separator with value is an argument", in: "--=x", want: []view{{"--", "x", true, "--=x"}}},
		{name: "dashed flag is an argument", in: "---", want: []view{{"---", "", false, "---"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.in)
			if got := views(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("args = %#v, want %#v", got, tt.want)
			}
			init, hasInit := c.Init()
			if init != tt.init || hasInit != tt.hasInit {
				t.Errorf("Init() = %q, %v; want %q, %v", init, hasInit, tt.init, tt.hasInit)
			}
			want := tt.rendered
			if want == "" {
				want = strings.TrimSpace(tt.in)
			}
			if got := c.String(); got != want {
				t.Errorf("String() = %q, want %q", got, want)
			}
			// A rendered line parses back to the same thing.
			again := mustParse(t, c.String())
			if !again.Equal(c) || again.String() != c.String() {
				t.Errorf("re-parse of %q gave %q", c.String(), again.String())
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		in      string
		want    error
		wantMsg string
	}{
		{`k="abc`, ErrUnterminatedQuote, "byte 2"},
		{`a "b c`, ErrUnterminatedQuote, "byte 2"},
		{`a k="x"y"z`, ErrUnterminatedQuote, "byte 8"},
		{`=foo`, ErrEmptyKey, "byte 0"},
		{`a =`, ErrEmptyKey, "byte 2"},
		{`a ""`, ErrEmptyKey, "byte 2"},
		{`"=x"`, ErrEmptyKey, "byte 0"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q should be one line mentioning %q", err, tt.wantMsg)
			}
		})
	}
}

func TestParseArg(t *testing.T) {
	a := mustArg(t, ` "k=a b" `)
	if a.Key() != "k" || a.Value() != "a b" || a.String() != `"k=a b"` {
		t.Errorf("got %q %q %q", a.Key(), a.Value(), a.String())
	}
	for _, bad := range []string{"", "a b", "--", "a -- b", `"x`} {
		if _, err := ParseArg(bad); err == nil {
			t.Errorf("ParseArg(%q) succeeded, want error", bad)
		}
	}
}

func TestNewArg(t *testing.T) {
	tests := []struct {
		key, value string
		flag       bool
		want       string
		err        error
	}{
		{key: "quiet", flag: true, want: "quiet"},
		{key: "k", value: "", want: "k="},
		{key: "k", value: "v", want: "k=v"},
		{key: "root", value: "UUID=abc", want: "root=UUID=abc"},
		{key: "k", value: "a b", want: `k="a b"`},
		{key: "k", value: "a\tb", want: "k=\"a\tb\""},
		{key: "k", value: " ", want: `k=" "`},
		{key: "", value: "x", err: ErrEmptyKey},
		{key: "", flag: true, err: ErrEmptyKey},
		{key: "a b", value: "x", err: ErrInvalidArg},
		{key: "a=b", value: "x", err: ErrInvalidArg},
		{key: `a"`, flag: true, err: ErrInvalidArg},
		{key: "--", flag: true, err: ErrInvalidArg},
		{key: "k", value: `a"b`, err: ErrInvalidArg},
	}
	for _, tt := range tests {
		var (
			a   Arg
			err error
		)
		if tt.flag {
			a, err = NewFlag(tt.key)
		} else {
			a, err = NewArg(tt.key, tt.value)
		}
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("New(%q, %q) error = %v, want %v", tt.key, tt.value, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("New(%q, %q): %v", tt.key, tt.value, err)
		}
		if a.String() != tt.want {
			t.Errorf("New(%q, %q) = %q, want %q", tt.key, tt.value, a.String(), tt.want)
		}
		// What we render, the kernel's rules read back as the same argument.
		back := mustArg(t, a.String())
		if !back.Equal(a) || back.Value() != tt.value || back.HasValue() == tt.flag {
			t.Errorf("round trip of %q gave key %q value %q", a.String(), back.Key(), back.Value())
		}
	}
}

func TestFromArgs(t *testing.T) {
	tests := []struct {
		name string
		in   []string
		want string
		err  error
	}{
		{name: "nil", in: nil, want: ""},
		{name: "plain", in: []string{"quiet", "root=UUID=1", "k="}, want: "quiet root=UUID=1 k="},
		{name: "value with space gets quoted", in: []string{"k=a b"}, want: `k="a b"`},
		{name: "already quoted kept", in: []string{`k="a b"`, `"x=1 2"`}, want: `k="a b" "x=1 2"`},
		{name: "duplicates", in: []string{"console=tty0", "console=tty0"}, want: "console=tty0 console=tty0"},
		{name: "init part", in: []string{"a", "--", "single", "x"}, want: "a -- single x"},
		{name: "empty key", in: []string{"=x"}, err: ErrEmptyKey},
		{name: "empty element", in: []string{""}, err: ErrEmptyKey},
		{name: "flag with space", in: []string{"a b"}, err: ErrInvalidArg},
		{name: "two quoted args in one element", in: []string{`a="x y" b`}, err: ErrInvalidArg},
		{name: "stray quote", in: []string{`k=a"b`}, err: ErrUnterminatedQuote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := FromArgs(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.String() != tt.want {
				t.Errorf("String() = %q, want %q", c.String(), tt.want)
			}
		})
	}
}

func TestKeyEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"rd.luks-uuid", "rd.luks_uuid", true},
		{"a-b_c", "a_b-c", true},
		{"abc", "abc", true},
		{"abc", "ABC", false},
		{"foo", "foobar", false},
		{"a.b", "a-b", false},
		{"", "", true},
	}
	for _, tt := range tests {
		if got := KeyEqual(tt.a, tt.b); got != tt.want {
			t.Errorf("KeyEqual(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestArgEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a-b=1", "a_b=1", true},
		{"a-b=1", "a_b=2", false},
		{`k="x"`, "k=x", true},
		{`"k=a b"`, `k="a b"`, true},
		{"k", "k=", false},
		{"k=", `k=""`, true},
		{"k=Value", "k=value", false},
		{"k=a-b", "k=a_b", false},
	}
	for _, tt := range tests {
		if got := mustArg(t, tt.a).Equal(mustArg(t, tt.b)); got != tt.want {
			t.Errorf("%q equal %q = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestQueries(t *testing.T) {
	c := mustParse(t, `console=ttyS0 console_tty=1 rd.luks-uuid=abc quiet k= console=tty0 "dyn=a b"`)
	tests := []struct {
		key  string
		get  []string
		has  bool
		note string
	}{
		{key: "console", get: []string{"ttyS0", "tty0"}, has: true},
		{key: "console-tty", get: []string{"1"}, has: true},
		{key: "rd.luks_uuid", get: []string{"abc"}, has: true},
		{key: "quiet", get: []string{""}, has: true},
		{key: "k", get: []string{""}, has: true},
		{key: "dyn", get: []string{"a b"}, has: true},
		{key: "missing", get: nil, has: false},
		{key: "consol", get: nil, has: false},
	}
	for _, tt := range tests {
		if got := c.Get(tt.key); !reflect.DeepEqual(got, tt.get) {
			t.Errorf("Get(%q) = %q, want %q", tt.key, got, tt.get)
		}
		if got := c.Has(tt.key); got != tt.has {
			t.Errorf("Has(%q) = %v, want %v", tt.key, got, tt.has)
		}
	}
	contains := []struct {
		arg  string
		want bool
	}{
		{"console=tty0", true},
		{"console=tty1", false},
		{"console", false},
		{"rd.luks_uuid=abc", true},
		{"quiet", true},
		{"quiet=", false},
		{"k=", true},
		{"k", false},
		{`dyn="a b"`, true},
	}
	for _, tt := range contains {
		if got := c.Contains(mustArg(t, tt.arg)); got != tt.want {
			t.Errorf("Contains(%q) = %v, want %v", tt.arg, got, tt.want)
		}
	}
}

func TestEdits(t *testing.T) {
	tests := []struct {
		name string
		in   string
		edit func(t *testing.T, c *Cmdline) int
		n    int
		want string
	}{
		{
			name: "append keeps duplicates and goes before init",
			in:   "console=ttyS0 -- single",
			edit: func(t *testing.T, c *Cmdline) int {
				if err := c.Append(mustArg(t, "console=ttyS0"), mustArg(t, "console=tty0")); err != nil {
					t.Fatal(err)
				}
				return 0
			},
			want: "console=ttyS0 console=ttyS0 console=tty0 -- single",
		},
		{
			name: "append constructed value with space is quoted",
			in:   "a",
			edit: func(t *testing.T, c *Cmdline) int {
				arg, err := NewArg("dyndbg", "file x.c +p")
				if err != nil {
					t.Fatal(err)
				}
				if err := c.Append(arg); err != nil {
					t.Fatal(err)
				}
				return 0
			},
			want: `a dyndbg="file x.c +p"`,
		},
		{
			name: "remove every occurrence of a key with either spelling",
			in:   `a-b=1 x a_b=2 "a-b=3 4" a-b y a-bc=5`,
			edit: func(t *testing.T, c *Cmdline) int { return c.Remove("a_b") },
			n:    4,
			want: "x y a-bc=5",
		},
		{
			name: "remove missing key",
			in:   "a b",
			edit: func(t *testing.T, c *Cmdline) int { return c.Remove("c") },
			n:    0,
			want: "a b",
		},
		{
			name: "remove exact takes only the first match",
			in:   "console=tty0 nosmt console=ttyS0 nosmt",
			edit: func(t *testing.T, c *Cmdline) int {
				return boolInt(c.RemoveExact(mustArg(t, "nosmt")))
			},
			n:    1,
			want: "console=tty0 console=ttyS0 nosmt",
		},
		{
			name: "remove exact matches key spelling and quoting loosely, value strictly",
			in:   `a_b="x y" a-b=x a-b="x y"`,
			edit: func(t *testing.T, c *Cmdline) int {
				return boolInt(c.RemoveExact(mustArg(t, `"a-b=x y"`)))
			},
			n:    1,
			want: `a-b=x a-b="x y"`,
		},
		{
			name: "remove exact distinguishes flag from empty value",
			in:   "k= k",
			edit: func(t *testing.T, c *Cmdline) int {
				return boolInt(c.RemoveExact(mustArg(t, "k")))
			},
			n:    1,
			want: "k=",
		},
		{
			name: "remove exact with no match",
			in:   "k=1",
			edit: func(t *testing.T, c *Cmdline) int {
				return boolInt(c.RemoveExact(mustArg(t, "k=2")))
			},
			n:    0,
			want: "k=1",
		},
		{
			name: "untouched arguments keep their bytes",
			in:   `"a=1 2" b="c d" e=f"g h"`,
			edit: func(t *testing.T, c *Cmdline) int { return c.Remove("b") },
			n:    1,
			want: `"a=1 2" e=f"g h"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, tt.in)
			if n := tt.edit(t, c); n != tt.n {
				t.Errorf("count = %d, want %d", n, tt.n)
			}
			if got := c.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestAppendZeroArg(t *testing.T) {
	c := mustParse(t, "a")
	if err := c.Append(mustArg(t, "b"), Arg{}); !errors.Is(err, ErrEmptyKey) {
		t.Fatalf("Append(zero) error = %v, want ErrEmptyKey", err)
	}
	if c.String() != "a" {
		t.Errorf("failed Append changed the line to %q", c)
	}
}

func TestZeroValue(t *testing.T) {
	var c Cmdline
	if c.String() != "" || c.Len() != 0 || c.Has("x") {
		t.Fatal("zero Cmdline is not empty")
	}
	if err := c.Append(mustArg(t, "x=1")); err != nil {
		t.Fatal(err)
	}
	if c.String() != "x=1" {
		t.Errorf("String() = %q", c.String())
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"a b c", "a b c", true},
		{"a-b=1 c", "a_b=1 c", true},
		{`k="x y"`, `"k=x y"`, true},
		{"a b", "b a", false},
		{"a b", "a", false},
		{"a=1", "a=2", false},
		{"a", "a=", false},
		{"a -- x", "a -- x", true},
		{"a -- x", "a -- y", false},
		{"a --", "a", false},
		{"console=tty0 console=tty0", "console=tty0", false},
	}
	for _, tt := range tests {
		a, b := mustParse(t, tt.a), mustParse(t, tt.b)
		if got := a.Equal(b); got != tt.want {
			t.Errorf("%q.Equal(%q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
		if got := b.Equal(a); got != tt.want {
			t.Errorf("%q.Equal(%q) = %v, want %v", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestCloneIsIndependent(t *testing.T) {
	c := mustParse(t, "a b c -- x")
	d := c.Clone()
	d.Remove("b")
	if err := d.Append(mustArg(t, "z")); err != nil {
		t.Fatal(err)
	}
	if c.String() != "a b c -- x" {
		t.Errorf("original changed to %q", c)
	}
	if d.String() != "a c z -- x" {
		t.Errorf("clone is %q", d)
	}
	args := c.Args()
	args[0] = mustArg(t, "changed")
	if c.String() != "a b c -- x" {
		t.Errorf("Args() aliases the line: %q", c)
	}
}
