// Command importgroups fails when a Go file's imports are not grouped as goimports with
// -local gobootc.dev groups them: the standard library, then other modules, then this
// project's packages, each group once, sorted, separated by one blank line. With -w it rewrites
// such import blocks in place (comments inside a block that is rewritten are not kept, so it
// refuses those).
//
//	go run scripts/importgroups.go [-w] DIR...
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const local = "gobootc.dev"

// kind orders the groups: standard library, other modules, this project.
func kind(path string) int {
	switch {
	case path == local || strings.HasPrefix(path, local+"/"):
		return 2
	case strings.Contains(strings.SplitN(path, "/", 2)[0], "."):
		return 1
	default:
		return 0
	}
}

func main() {
	write := flag.Bool("w", false, "rewrite badly grouped import blocks")
	flag.Parse()
	bad := 0
	for _, dir := range flag.Args() {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
				return err
			}
			ok, err := check(path, *write)
			if err != nil {
				return err
			}
			if !ok {
				bad++
			}
			return nil
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "importgroups:", err)
			os.Exit(2)
		}
	}
	if bad > 0 {
		if !*write {
			fmt.Fprintf(os.Stderr, "importgroups: %d file(s) not grouped as std / modules / %s (fix: go run scripts/importgroups.go -w lib tools generators tests scripts)\n", bad, local)
		}
		os.Exit(1)
	}
}

// check reports whether path's import block is grouped well; with write it fixes it.
func check(path string, write bool) (bool, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, parser.ImportsOnly|parser.ParseComments)
	if err != nil {
		return false, fmt.Errorf("parsing %s: %w", path, err)
	}
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.IMPORT || !gen.Lparen.IsValid() {
			continue
		}
		if grouped(gen.Specs, fset) {
			continue
		}
		if !write {
			fmt.Printf("%s: imports not grouped as std / modules / %s\n", path, local)
			return false, nil
		}
		if hasComments(f, gen, fset) {
			fmt.Printf("%s: imports not grouped, and the block has comments: group it by hand\n", path)
			return false, nil
		}
		start, end := fset.Position(gen.Lparen).Offset+1, fset.Position(gen.Rparen).Offset
		out := append(append(append([]byte{}, src[:start]...), render(gen.Specs)...), src[end:]...)
		return false, os.WriteFile(path, out, 0o644)
	}
	return true, nil
}

// grouped tells whether the specs, split into groups at blank lines, hold one kind per group,
// the kinds in order, each group sorted by path. A group of the same kind may follow when its
// first line is a comment saying why it stands apart (blank imports that register transports).
func grouped(specs []ast.Spec, fset *token.FileSet) bool {
	lastKind, lastLine, lastPath := -1, 0, ""
	for i, s := range specs {
		is := s.(*ast.ImportSpec)
		p, _ := strconv.Unquote(is.Path.Value)
		k := kind(p)
		line := fset.Position(is.Pos()).Line
		if is.Doc != nil {
			line = fset.Position(is.Doc.Pos()).Line
		}
		newGroup := i > 0 && line > lastLine+1
		switch {
		case i == 0:
		case newGroup && k < lastKind, newGroup && k == lastKind && is.Doc == nil,
			!newGroup && k != lastKind, !newGroup && p < lastPath:
			return false
		}
		lastKind, lastLine, lastPath = k, fset.Position(is.End()).Line, p
	}
	return true
}

// render writes the block's body as it should be: one group per kind, sorted by path.
func render(specs []ast.Spec) string {
	groups := make([][]*ast.ImportSpec, 3)
	for _, s := range specs {
		is := s.(*ast.ImportSpec)
		p, _ := strconv.Unquote(is.Path.Value)
		groups[kind(p)] = append(groups[kind(p)], is)
	}
	var b bytes.Buffer
	b.WriteString("\n")
	first := true
	for _, g := range groups {
		if len(g) == 0 {
			continue
		}
		slices.SortStableFunc(g, func(a, b *ast.ImportSpec) int { return strings.Compare(a.Path.Value, b.Path.Value) })
		if !first {
			b.WriteString("\n")
		}
		first = false
		for _, is := range g {
			b.WriteString("\t")
			if is.Name != nil {
				b.WriteString(is.Name.Name + " ")
			}
			b.WriteString(is.Path.Value + "\n")
		}
	}
	return b.String()
}

func hasComments(f *ast.File, gen *ast.GenDecl, fset *token.FileSet) bool {
	for _, c := range f.Comments {
		if c.Pos() > gen.Lparen && c.End() < gen.Rparen {
			return true
		}
	}
	return false
}
