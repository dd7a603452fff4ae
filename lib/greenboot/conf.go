// Package greenboot reads what existing greenboot setups configure: greenboot.conf, which
// greenboot sources as bash, is parsed here without running it.
package greenboot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gobootc.dev/lib/layout"
)

// Var is one variable the file assigns: a scalar (one value) or a bash array.
type Var struct {
	Values []string
	Array  bool
}

// Conf is the variables of a greenboot.conf, in the state sourcing it would leave them, as far
// as a file of assignments can be understood without running it. Keys this project does not
// read are kept and ignored: the same file configures greenboot, MicroShift and others.
type Conf struct {
	Vars map[string]*Var
	// Warnings name, one line each with its line number, the statements that were left out
	// (commands, unterminated quotes) or kept as written (expansions that are not evaluated).
	Warnings []string
}

// Get is the variable as $NAME expands: a scalar's value, an array's first element.
func (c *Conf) Get(name string) (string, bool) {
	v, ok := c.Vars[name]
	if !ok || len(v.Values) == 0 {
		return "", ok
	}
	return v.Values[0], true
}

// List is the variable as "${NAME[@]}" expands: every element of an array, or a scalar alone.
func (c *Conf) List(name string) []string {
	if v, ok := c.Vars[name]; ok {
		return v.Values
	}
	return nil
}

// Load reads root's greenboot.conf (layout.GreenbootConf: the administrator's file, read and
// never rewritten). A root without one has an empty configuration.
func Load(root string) (*Conf, error) {
	path := layout.GreenbootConf(filepath.Join(root, "etc"))
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Conf{Vars: map[string]*Var{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return Parse(data), nil
}

// Parse reads assignments as bash would source them: NAME=word, NAME=(words…) over any number
// of lines, NAME+= for either, several assignments on a line, `export`, comments, quoting and
// backslash escapes. Expansions ($X, $(…)) are kept as written. A statement that is anything
// else (a command, `A=1 cmd`, which sets nothing in the shell) is left out with a warning, and
// parsing goes on at the next line: a file greenboot can source is never refused as a whole.
func Parse(data []byte) *Conf {
	p := &parser{src: string(data), line: 1, conf: &Conf{Vars: map[string]*Var{}}}
	for !p.eof() {
		p.statement()
	}
	return p.conf
}

type parser struct {
	src  string
	pos  int
	line int
	conf *Conf
	// expansion: a '$' or '`' outside single quotes and not escaped, which bash would expand.
	expansion bool
}

// errSkip ends a statement that cannot be understood; the message says why.
type errSkip struct{ msg string }

func (e *errSkip) Error() string { return e.msg }

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.src[p.pos]
}

func (p *parser) next() byte {
	c := p.src[p.pos]
	p.pos++
	if c == '\n' {
		p.line++
	}
	return c
}

func (p *parser) warn(line int, format string, args ...any) {
	p.conf.Warnings = append(p.conf.Warnings, fmt.Sprintf("line %d: ", line)+fmt.Sprintf(format, args...))
}

// blanks skips spaces, tabs and escaped newlines, which separate words but not statements.
func (p *parser) blanks() {
	for !p.eof() {
		switch {
		case p.peek() == ' ' || p.peek() == '\t':
			p.next()
		case strings.HasPrefix(p.src[p.pos:], "\\\n"):
			p.next()
			p.next()
		default:
			return
		}
	}
}

// comment skips a comment up to, not including, the end of its line.
func (p *parser) comment() {
	for !p.eof() && p.peek() != '\n' {
		p.next()
	}
}

type assignment struct {
	name   string
	append bool
	value  *Var
}

// builtins may precede assignments; their options (-a, -x, …) and bare names change nothing
// that a parse of values can see.
var builtins = []string{"export", "readonly", "declare", "typeset"}

// statement reads one statement, up to and including its newline or ';', and applies it.
func (p *parser) statement() {
	p.blanks()
	start := p.line
	var as []assignment
	first, builtin := true, false
	for {
		p.blanks()
		if p.eof() || p.peek() == '\n' || p.peek() == ';' || p.peek() == '#' {
			break
		}
		if first {
			first = false
			if slices.ContainsFunc(builtins, p.keyword) {
				builtin = true
				continue
			}
		}
		if builtin && (p.peek() == '-' || p.bareName()) {
			if _, _, err := p.word(); err != nil {
				p.warn(start, "%v; statement ignored", err)
				p.skipStatement()
				return
			}
			continue
		}
		a, ok, err := p.assignment()
		if err == nil && !ok {
			err = &errSkip{"not an assignment"}
		}
		if err != nil {
			p.warn(start, "%v; statement ignored", err)
			p.skipStatement()
			return
		}
		as = append(as, a)
	}
	if p.peek() == '#' {
		p.comment()
	}
	if !p.eof() {
		p.next() // the newline or ';'
	}
	for _, a := range as {
		p.apply(a)
	}
}

// keyword consumes word if it stands alone at the current position.
func (p *parser) keyword(word string) bool {
	rest := p.src[p.pos:]
	if !strings.HasPrefix(rest, word) {
		return false
	}
	if len(rest) > len(word) && !strings.ContainsRune(" \t\n;", rune(rest[len(word)])) {
		return false
	}
	p.pos += len(word)
	return true
}

// nameLen is the length of the variable name at the start of s, 0 if there is none.
func nameLen(s string) int {
	n := 0
	for n < len(s) && (s[n] == '_' || s[n] >= 'A' && s[n] <= 'Z' || s[n] >= 'a' && s[n] <= 'z' || n > 0 && s[n] >= '0' && s[n] <= '9') {
		n++
	}
	return n
}

// bareName reports whether the current word is a variable name alone (`export NAME`).
func (p *parser) bareName() bool {
	rest := p.src[p.pos:]
	n := nameLen(rest)
	return n > 0 && (n == len(rest) || strings.ContainsRune(" \t\n;#", rune(rest[n])))
}

// assignment reads NAME=value or NAME+=value; ok is false, with nothing consumed, when the
// current word does not start with an assignment.
func (p *parser) assignment() (assignment, bool, error) {
	rest := p.src[p.pos:]
	n := nameLen(rest)
	if n == 0 {
		return assignment{}, false, nil
	}
	a := assignment{name: rest[:n]}
	switch {
	case strings.HasPrefix(rest[n:], "+="):
		a.append = true
		n += 2
	case strings.HasPrefix(rest[n:], "="):
		n++
	default:
		return assignment{}, false, nil
	}
	line := p.line
	p.pos += n
	p.expansion = false
	if p.peek() == '(' {
		p.next()
		values, err := p.array()
		if err != nil {
			return a, true, err
		}
		a.value = &Var{Values: values, Array: true}
	} else {
		w, _, err := p.word()
		if err != nil {
			return a, true, err
		}
		a.value = &Var{Values: []string{w}}
	}
	if p.expansion {
		p.warn(line, "%s: expansions are not evaluated; the value is kept as written", a.name)
	}
	return a, true, nil
}

// array reads the elements of NAME=( … ) after the parenthesis, up to and including the closing one.
func (p *parser) array() ([]string, error) {
	values := []string{}
	for {
		p.blanks()
		switch {
		case p.eof():
			return nil, &errSkip{"array not closed"}
		case p.peek() == '\n':
			p.next()
		case p.peek() == '#':
			p.comment()
		case p.peek() == ')':
			p.next()
			return values, nil
		default:
			w, n, err := p.word()
			if err != nil {
				return nil, err
			}
			if n == 0 {
				return nil, &errSkip{fmt.Sprintf("unexpected %q in an array", p.peek())}
			}
			values = append(values, w)
		}
	}
}

// word reads one shell word: unquoted characters, '…', "…" and backslash escapes, up to a blank,
// a newline, ';' or a parenthesis. n counts the source bytes it took (an empty word takes none).
func (p *parser) word() (string, int, error) {
	var b strings.Builder
	start := p.pos
	for !p.eof() {
		c := p.peek()
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == ';' || c == ')':
			return b.String(), p.pos - start, nil
		case c == '(' || c == '&' || c == '|' || c == '<' || c == '>':
			return "", 0, &errSkip{fmt.Sprintf("unexpected %q", c)}
		case c == '\\':
			p.next()
			if p.eof() {
				return b.String(), p.pos - start, nil
			}
			if e := p.next(); e != '\n' {
				b.WriteByte(e)
			}
		case c == '\'':
			p.next()
			end := strings.IndexByte(p.src[p.pos:], '\'')
			if end < 0 {
				p.skipTo(len(p.src))
				return "", 0, &errSkip{"quote ' not closed"}
			}
			b.WriteString(p.src[p.pos : p.pos+end])
			p.skipTo(p.pos + end + 1)
		case c == '"':
			p.next()
			if err := p.doubleQuoted(&b); err != nil {
				return "", 0, err
			}
		default:
			p.expansion = p.expansion || c == '$' || c == '`'
			b.WriteByte(p.next())
		}
	}
	return b.String(), p.pos - start, nil
}

// doubleQuoted reads the inside of "…" after the opening quote, up to and including the closing one.
func (p *parser) doubleQuoted(b *strings.Builder) error {
	for !p.eof() {
		c := p.next()
		switch c {
		case '"':
			return nil
		case '\\':
			if p.eof() {
				return &errSkip{`quote " not closed`}
			}
			switch e := p.next(); e {
			case '\n':
			case '$', '`', '"', '\\':
				b.WriteByte(e)
			default:
				b.WriteByte('\\')
				b.WriteByte(e)
			}
		default:
			p.expansion = p.expansion || c == '$' || c == '`'
			b.WriteByte(c)
		}
	}
	return &errSkip{`quote " not closed`}
}

// skipTo moves to pos, counting the lines passed.
func (p *parser) skipTo(pos int) {
	for p.pos < pos {
		p.next()
	}
}

// skipStatement passes the rest of a statement that is left out: up to the end of its line,
// or of the last line of an array it opened, quotes included, so that their contents are not
// read as statements of their own.
func (p *parser) skipStatement() {
	depth := 0
	for !p.eof() {
		switch p.peek() {
		case '\n', ';':
			p.next()
			if depth == 0 {
				return
			}
		case '#':
			p.comment()
		case '(':
			depth++
			p.next()
		case ')':
			depth = max(depth-1, 0)
			p.next()
		case ' ', '\t', '&', '|', '<', '>':
			p.next()
		default:
			if _, n, err := p.word(); err != nil || n == 0 {
				if !p.eof() && p.peek() != '\n' && p.peek() != '(' && p.peek() != ')' {
					p.next()
				}
			}
		}
	}
}

// apply sets or extends a variable as bash does.
func (p *parser) apply(a assignment) {
	old, ok := p.conf.Vars[a.name]
	if !a.append || !ok {
		p.conf.Vars[a.name] = a.value
		return
	}
	if a.value.Array {
		old.Values = append(old.Values, a.value.Values...)
		old.Array = true
		return
	}
	// NAME+=word appends to the string, or to an array's first element.
	if len(old.Values) == 0 {
		old.Values = []string{a.value.Values[0]}
		return
	}
	old.Values[0] += a.value.Values[0]
}
