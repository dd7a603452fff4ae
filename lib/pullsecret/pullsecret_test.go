package pullsecret

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	os.WriteFile(b, []byte("{}"), 0o600)
	blocked := filepath.Join(dir, "file", "auth.json") // a path through a regular file: ENOTDIR
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o600)
	cases := []struct {
		name, explicit string
		search         []string
		want           string
		err            bool
	}{
		{"first existing wins", "", []string{a, b}, b, false},
		{"none: anonymous", "", []string{a}, "", false},
		{"explicit", b, []string{a}, b, false},
		{"missing explicit", a, nil, "", true},
		{"unreadable is an error, not anonymous", "", []string{blocked, b}, "", true},
	}
	for _, c := range cases {
		got, err := Find(c.explicit, c.search)
		if got != c.want || (err != nil) != c.err {
			t.Errorf("%s: Find = %q, %v", c.name, got, err)
		}
	}
}
