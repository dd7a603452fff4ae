package boundimage_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gobootc.dev/lib/boundimage"
)

// root builds a deployment root: files maps a path inside the root to its content, links maps a
// path inside the root to a symlink target.
func root(t *testing.T, files, links map[string]string) string {
	t.Helper()
	r := t.TempDir()
	for p, content := range files {
		full := filepath.Join(r, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		full := filepath.Join(r, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

const (
	quadlets = "usr/share/containers/systemd/"
	decl     = boundimage.Dir + "/"
)

func TestRead(t *testing.T) {
	// outside is a quadlet file outside every test root; a link must never reach it.
	outside := filepath.Join(t.TempDir(), "outside.image")
	if err := os.WriteFile(outside, []byte("[Image]\nImage=outside.example/leak:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		files  map[string]string
		links  map[string]string
		want   []boundimage.Image
		err    error  // sentinel the error must wrap (nil: any error when msg is set)
		msg    string // substring of the error
		noDecl bool   // Declares is false
	}{
		{
			name:   "no directory",
			noDecl: true,
		},
		{
			name:  "image and container",
			files: map[string]string{quadlets + "app.image": "# comment\n[Image]\nImage=quay.io/org/app:1\nArch=amd64\n", quadlets + "web.container": "[Unit]\nDescription=web\n\n[Container]\nImage = registry.example/web@sha256:0123\nExec=/bin/sh\n[Install]\nWantedBy=default.target\n"},
			links: map[string]string{decl + "app.image": "/" + quadlets + "app.image", decl + "web.container": "../../../share/containers/systemd/web.container"},
			want: []boundimage.Image{
				{Image: "quay.io/org/app:1", Name: "app.image", Source: "/" + quadlets + "app.image"},
				{Image: "registry.example/web@sha256:0123", Name: "web.container", Source: "/" + quadlets + "web.container"},
			},
		},
		{
			name:  "last Image= wins and continuation lines join",
			files: map[string]string{quadlets + "a.image": "[Image]\nImage=first:1\nLabel=a \\\n  b\nImage=second:2\n"},
			links: map[string]string{decl + "a.image": "/" + quadlets + "a.image"},
			want:  []boundimage.Image{{Image: "second:2", Name: "a.image", Source: "/" + quadlets + "a.image"}},
		},
		{
			name:  "percent escape",
			files: map[string]string{quadlets + "a.image": "[Image]\nImage=reg.example/a:100%%\n"},
			links: map[string]string{decl + "a.image": "/" + quadlets + "a.image"},
			want:  []boundimage.Image{{Image: "reg.example/a:100%", Name: "a.image", Source: "/" + quadlets + "a.image"}},
		},
		{
			name:  "link through a symlinked directory",
			files: map[string]string{"usr/lib/q/a.image": "[Image]\nImage=a:1\n"},
			links: map[string]string{"etc/q": "../usr/lib/q", decl + "a.image": "/etc/q/a.image"},
			want:  []boundimage.Image{{Image: "a:1", Name: "a.image", Source: "/usr/lib/q/a.image"}},
		},
		{
			name:  "specifier",
			files: map[string]string{quadlets + "a.container": "[Container]\nImage=reg.example/%H/app:1\n"},
			links: map[string]string{decl + "a.container": "/" + quadlets + "a.container"},
			err:   boundimage.ErrUnsupported, msg: `systemd specifier "%H"`,
		},
		{
			name:  "trailing percent",
			files: map[string]string{quadlets + "a.image": "[Image]\nImage=app:1%\n"},
			links: map[string]string{decl + "a.image": "/" + quadlets + "a.image"},
			err:   boundimage.ErrUnsupported, msg: "a.image:2",
		},
		{
			name:  "AuthFile",
			files: map[string]string{quadlets + "a.image": "[Image]\nImage=app:1\nAuthFile=/etc/auth.json\n"},
			links: map[string]string{decl + "a.image": "/" + quadlets + "a.image"},
			err:   boundimage.ErrUnsupported, msg: "a.image:3: unsupported in a bound image: AuthFile=",
		},
		{
			name:  "PullSecret",
			files: map[string]string{quadlets + "a.container": "[Container]\nImage=app:1\nPullSecret=mine\n"},
			links: map[string]string{decl + "a.container": "/" + quadlets + "a.container"},
			err:   boundimage.ErrUnsupported, msg: "PullSecret=",
		},
		{
			name:  "not a symlink",
			files: map[string]string{decl + "a.image": "[Image]\nImage=app:1\n"},
			err:   boundimage.ErrDeclaration, msg: "/usr/lib/bootc/bound-images.d/a.image: invalid bound image declaration: not a symlink",
		},
		{
			name:  "wrong extension",
			files: map[string]string{quadlets + "a.volume": "[Volume]\n"},
			links: map[string]string{decl + "a.volume": "/" + quadlets + "a.volume"},
			err:   boundimage.ErrDeclaration, msg: "bound-images.d/a.volume: invalid bound image declaration: want a name ending in .image or .container",
		},
		{
			name:  "no Image=",
			files: map[string]string{quadlets + "a.container": "[Container]\nExec=true\n[Image]\nImage=wrong-section:1\n"},
			links: map[string]string{decl + "a.container": "/" + quadlets + "a.container"},
			err:   boundimage.ErrDeclaration, msg: "no Image= in [Container]",
		},
		{
			name:  "malformed line",
			files: map[string]string{quadlets + "a.image": "[Image]\nImage=app:1\nthis is not a key\n"},
			links: map[string]string{decl + "a.image": "/" + quadlets + "a.image"},
			err:   boundimage.ErrSyntax, msg: quadlets + "a.image:3: malformed quadlet file",
		},
		{
			name:  "key before a section",
			files: map[string]string{quadlets + "a.image": "Image=app:1\n"},
			links: map[string]string{decl + "a.image": "/" + quadlets + "a.image"},
			err:   boundimage.ErrSyntax, msg: "a.image:1:",
		},
		{
			name:  "bad section header",
			files: map[string]string{quadlets + "a.image": "\n[Image\nImage=app:1\n"},
			links: map[string]string{decl + "a.image": "/" + quadlets + "a.image"},
			err:   boundimage.ErrSyntax, msg: "a.image:2: malformed quadlet file: bad section header",
		},
		{
			name:  "absolute link outside the root",
			links: map[string]string{decl + "a.image": outside},
			msg:   "no such file or directory",
		},
		{
			name:  "relative link climbing out of the root",
			links: map[string]string{decl + "a.image": strings.Repeat("../", 20) + strings.TrimPrefix(outside, "/")},
			msg:   "no such file or directory",
		},
		{
			name:  "link loop",
			links: map[string]string{decl + "a.image": "b.image", decl + "b.image": "a.image"},
			msg:   "too many levels of symbolic links",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := root(t, tc.files, tc.links)
			got, err := boundimage.Read(r)
			if tc.msg != "" || tc.err != nil {
				if err == nil {
					t.Fatalf("Read succeeded with %+v, want an error containing %q", got, tc.msg)
				}
				if tc.err != nil && !errors.Is(err, tc.err) {
					t.Errorf("error %q does not wrap %v", err, tc.err)
				}
				if !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("error %q does not contain %q", err, tc.msg)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error spans lines: %q", err)
				}
				if strings.Contains(err.Error(), "outside.example") {
					t.Errorf("read a file outside the root: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Read:\n got %+v\nwant %+v", got, tc.want)
			}
			has, err := boundimage.Declares(r)
			if err != nil {
				t.Fatal(err)
			}
			if has == tc.noDecl {
				t.Errorf("Declares = %v, want %v", has, !tc.noDecl)
			}
		})
	}
}

func TestHasImages(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  bool
	}{
		{"missing storage", nil, false},
		{"fresh storage", map[string]string{"overlay/": "", "overlay-images/": ""}, false},
		{"empty list", map[string]string{"overlay-images/images.json": "[]"}, false},
		{"one image", map[string]string{"overlay-images/images.json": `[{"id":"abc","names":["localhost/app:1"]}]`}, true},
		{"another driver", map[string]string{"overlay-images/images.json": "[]", "vfs-images/images.json": `[{"id":"abc"}]`}, true},
		// Not understood: podman decides.
		{"unparsable list", map[string]string{"overlay-images/images.json": "{not json"}, true},
		{"not a list file", map[string]string{"overlay-layers/layers.json": `[{"id":"l"}]`}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			storage := filepath.Join(t.TempDir(), "storage")
			for p, content := range c.files {
				full := filepath.Join(storage, p)
				if strings.HasSuffix(p, "/") {
					if err := os.MkdirAll(full, 0o700); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(full, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := boundimage.HasImages(storage)
			if err != nil || got != c.want {
				t.Errorf("HasImages = %v, %v; want %v", got, err, c.want)
			}
		})
	}
	// A list that cannot be read is an error, not a guess.
	storage := t.TempDir()
	if err := os.MkdirAll(filepath.Join(storage, "overlay-images", "images.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := boundimage.HasImages(storage); err == nil || !strings.Contains(err.Error(), "image list") {
		t.Errorf("HasImages on an unreadable list: %v", err)
	}
}
