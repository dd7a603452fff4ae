package status

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gobootc.dev/lib/host"
)

// fixtures is the shared spec directory, next to the repository checkout.
func fixtures(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../../shared/spec/fixtures")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("spec fixtures not found: %v", err)
	}
	return dir
}

type golden struct {
	fixture string
	verbose bool
	body    []string
}

// readGoldens splits human-readable-expected.txt into its "== fixture [flags]" blocks.
func readGoldens(t *testing.T, path string) []golden {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []golden
	var cur *golden
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "== "):
			fields := strings.Fields(strings.TrimPrefix(line, "== "))
			out = append(out, golden{fixture: fields[0], verbose: len(fields) > 1 && fields[1] == "--verbose"})
			cur = &out[len(out)-1]
		case strings.HasPrefix(line, "#") && cur != nil:
			cur = nil // a comment section after the status goldens ends them
		case cur != nil:
			cur.body = append(cur.body, line)
		}
	}
	return out
}

var quoted = regexp.MustCompile(`"([^"]+)"`)

func TestHumanGoldens(t *testing.T) {
	dir := fixtures(t)
	goldens := readGoldens(t, filepath.Join(dir, "human-readable-expected.txt"))
	if len(goldens) < 12 {
		t.Fatalf("found only %d golden blocks", len(goldens))
	}
	for _, g := range goldens {
		name := g.fixture
		if g.verbose {
			name += "/verbose"
		}
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, g.fixture))
			if err != nil {
				t.Fatal(err)
			}
			h, err := host.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := Human(&b, h, g.verbose); err != nil {
				t.Fatal(err)
			}
			got := b.String()
			body := strings.TrimRight(strings.Join(g.body, "\n"), "\n")
			switch {
			case strings.HasPrefix(body, "(output must NOT contain"):
				for _, m := range quoted.FindAllStringSubmatch(body, -1) {
					if strings.Contains(got, m[1]) {
						t.Errorf("output contains %q:\n%s", m[1], got)
					}
				}
			case strings.HasPrefix(body, "(output must contain"):
				for _, m := range quoted.FindAllStringSubmatch(body, -1) {
					if !strings.Contains(got, m[1]) {
						t.Errorf("output lacks %q:\n%s", m[1], got)
					}
				}
			default:
				if strings.TrimRight(got, "\n") != body {
					t.Errorf("got:\n%s\nwant:\n%s", got, body)
				}
			}
		})
	}
}
