// Package fuzztest gathers seed inputs for fuzz targets, for tests: the string constants a
// package's own tests use and files from the repository (the sample image's configuration), so
// every fuzz target starts from the inputs the tests already know to matter.
package fuzztest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Literals returns every string constant written in the _test.go files of the working
// directory (go test runs in the package's directory), deduplicated and sorted so seeds do not
// depend on file order. A concatenation of literals and package-level string constants counts
// as one value ("quay.io/a/b@" + dgst), so table-driven inputs arrive whole.
func Literals(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob("*_test.go")
	if err != nil || len(files) == 0 {
		tb.Fatalf("gathering seeds: no _test.go files in the working directory (%v)", err)
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			tb.Fatalf("gathering seeds: %v", err)
		}
		parsed = append(parsed, f)
	}
	consts := packageConsts(parsed)
	seen := map[string]bool{}
	for _, f := range parsed {
		ast.Inspect(f, func(n ast.Node) bool {
			e, ok := n.(ast.Expr)
			if !ok {
				return true
			}
			if s, ok := eval(e, consts); ok {
				seen[s] = true
				return false // the parts of a concatenation are not inputs of their own
			}
			return true
		})
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// packageConsts evaluates the package-level string constants, in as many passes as it takes
// for constants defined in terms of one another.
func packageConsts(files []*ast.File) map[string]string {
	consts := map[string]string{}
	for changed := true; changed; {
		changed = false
		for _, f := range files {
			for _, d := range f.Decls {
				g, ok := d.(*ast.GenDecl)
				if !ok || g.Tok != token.CONST {
					continue
				}
				for _, spec := range g.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i >= len(vs.Values) {
							break
						}
						if _, done := consts[name.Name]; done {
							continue
						}
						if s, ok := eval(vs.Values[i], consts); ok {
							consts[name.Name] = s
							changed = true
						}
					}
				}
			}
		}
	}
	return consts
}

// eval returns the value of a string literal, a known constant, or a + of those.
func eval(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		return s, err == nil
	case *ast.Ident:
		s, ok := consts[e.Name]
		return s, ok
	case *ast.ParenExpr:
		return eval(e.X, consts)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		a, ok := eval(e.X, consts)
		if !ok {
			return "", false
		}
		b, ok := eval(e.Y, consts)
		return a + b, ok
	}
	return "", false
}

// File is one repository file given as a seed.
type File struct {
	Path string // relative to the repository root
	Data []byte
}

// Files reads the repository files matching each glob pattern (relative to the repository
// root, the nearest parent of the working directory holding go.work). A pattern that matches
// nothing fails the test: a seed that silently disappeared would leave the target unseeded.
func Files(tb testing.TB, patterns ...string) []File {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("gathering seeds: %v", err)
	}
	var out []File
	for _, pat := range patterns {
		matches, err := filepath.Glob(filepath.Join(root, pat))
		if err != nil || len(matches) == 0 {
			tb.Fatalf("gathering seeds: no file in %s matches %s (%v)", root, pat, err)
		}
		for _, m := range matches {
			data, err := os.ReadFile(m)
			if err != nil {
				tb.Fatalf("gathering seeds: %v", err)
			}
			rel, _ := filepath.Rel(root, m)
			out = append(out, File{Path: rel, Data: data})
		}
	}
	return out
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no go.work above %s", dir)
		}
	}
}

// OneLine fails the test when err's message spans lines: every error here ends up as one line
// of a journal or a terminal, where a second line would read as a separate message.
func OneLine(tb testing.TB, err error) {
	tb.Helper()
	if err != nil && strings.ContainsAny(err.Error(), "\n\r") {
		tb.Errorf("error spans lines: %q", err.Error())
	}
}
