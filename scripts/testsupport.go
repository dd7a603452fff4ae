// Command testsupport fails when a non-test file of the given packages imports a test-support
// package: one of this project's packages whose last path element ends in "test" (fetchtest,
// sysroottest, envtest, …). Test-support packages may import each other.
//
//	go run scripts/testsupport.go gobootc.dev/lib/... gobootc.dev/tools/... gobootc.dev/generators/...
//
// It reads the packages with `go list`, so build tags in GOFLAGS pick the files as a build does.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

const module = "gobootc.dev/"

type listed struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	CgoFiles   []string
}

// isSupport tells a test-support package by its import path.
func isSupport(importPath string) bool {
	return strings.HasPrefix(importPath, module) && strings.HasSuffix(path.Base(importPath), "test")
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run scripts/testsupport.go PACKAGE-PATTERN...")
		os.Exit(2)
	}
	pkgs, err := list(os.Args[1:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "testsupport: %v\n", err)
		os.Exit(2)
	}
	wd, _ := os.Getwd()
	bad := 0
	for _, p := range pkgs {
		if isSupport(p.ImportPath) {
			continue
		}
		for _, name := range append(p.GoFiles, p.CgoFiles...) {
			file := filepath.Join(p.Dir, name)
			imports, err := importsOf(file)
			if err != nil {
				fmt.Fprintf(os.Stderr, "testsupport: %v\n", err)
				os.Exit(2)
			}
			for _, imp := range imports {
				if isSupport(imp) {
					if rel, err := filepath.Rel(wd, file); err == nil {
						file = rel
					}
					fmt.Printf("%s imports %s: test support, for _test.go files and other test-support packages only\n", file, imp)
					bad++
				}
			}
		}
	}
	if bad > 0 {
		os.Exit(1)
	}
}

// list runs `go list` on the patterns; -e keeps going past packages that do not build, which
// go vet reports on its own.
func list(patterns []string) ([]listed, error) {
	cmd := exec.Command("go", append([]string{"list", "-e", "-json=ImportPath,Dir,GoFiles,CgoFiles"}, patterns...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var pkgs []listed
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p listed
		if err := dec.Decode(&p); err == io.EOF {
			return pkgs, nil
		} else if err != nil {
			return nil, fmt.Errorf("reading go list's output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}

func importsOf(file string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ImportsOnly)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	var paths []string
	for _, s := range f.Imports {
		p, err := strconv.Unquote(s.Path.Value)
		if err != nil {
			return nil, fmt.Errorf("%s: import %s: %w", file, s.Path.Value, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
