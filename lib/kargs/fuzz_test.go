package kargs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"gobootc.dev/lib/cmdline"
	"gobootc.dev/lib/fuzztest"
)

// kargsSeeds are the kargs.d files of the tests and of the sample images.
func kargsSeeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, s := range fuzztest.Literals(f) {
		out = append(out, []byte(s))
	}
	for _, file := range fuzztest.Files(f, "images/files/"+Dir+"/*.toml", "images/*/files/"+Dir+"/*.toml") {
		out = append(out, file.Data)
	}
	return out
}

// FuzzParseFile checks that a kargs.d file either fails with a one-line ErrInvalid naming the
// cause, or gives arguments that each stand alone on a command line and that, written out one
// after the other, parse back to the same list.
func FuzzParseFile(f *testing.F) {
	for _, s := range kargsSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, arch := range []string{"x86_64", "aarch64"} {
			args, err := ParseFile("10-image.toml", data, arch)
			if err != nil {
				fuzztest.OneLine(t, err)
				if !errors.Is(err, ErrInvalid) {
					t.Errorf("error is not ErrInvalid: %v", err)
				}
				return
			}
			var line cmdline.Cmdline
			for _, a := range args {
				one, err := cmdline.ParseArg(a.String())
				if err != nil || !one.Equal(a) {
					t.Errorf("argument %q does not stand alone: %v", a, err)
				}
				if err := line.Append(a); err != nil {
					t.Errorf("argument %q cannot be appended: %v", a, err)
				}
			}
			back, err := cmdline.Parse(line.String())
			if err != nil {
				t.Fatalf("arguments render as %q, which does not parse: %v", line.String(), err)
			}
			if _, hasInit := back.Init(); hasInit || !back.Equal(&line) {
				t.Errorf("arguments render as %q, which reads back as %q", line.String(), back)
			}
		}
	})
}

// FuzzReconcile checks Reconcile's contract on any current command line and any pair of
// kargs.d files, loaded from image roots as an update does: the machine's own arguments keep
// their bytes and order, the new image's additions are present, the old image's withdrawals
// take away at most one copy each, the init part stays, and applying the same image again
// changes nothing.
func FuzzReconcile(f *testing.F) {
	seeds := kargsSeeds(f)
	lits := fuzztest.Literals(f)
	for i := range seeds {
		f.Add(lits[i%len(lits)], seeds[i], seeds[(i+1)%len(seeds)])
	}
	f.Add("root=UUID=1 console=ttyS0 nosmt -- single", []byte(`kargs = ["console=ttyS0", "nosmt"]`), []byte(`kargs = ["console=tty0"]`))
	f.Fuzz(func(t *testing.T, current string, oldFile, newFile []byte) {
		cur, err := cmdline.Parse(current)
		if err != nil {
			return
		}
		oldRoot, newRoot := imageRoot(t, oldFile), imageRoot(t, newFile)
		oldSet, err := Load(oldRoot, "x86_64")
		if err != nil {
			fuzztest.OneLine(t, err)
			return
		}
		newSet, err := Load(newRoot, "x86_64")
		if err != nil {
			fuzztest.OneLine(t, err)
			return
		}
		out, err := ReconcileRoots(cur, oldRoot, newRoot, "x86_64")
		if err != nil {
			t.Fatalf("ReconcileRoots: %v", err)
		}

		var added, withdrawn []cmdline.Arg
		for _, a := range newSet.Args {
			if !containsArg(oldSet.Args, a) {
				added = append(added, a)
			}
		}
		for _, a := range oldSet.Args {
			if !containsArg(newSet.Args, a) {
				withdrawn = append(withdrawn, a)
			}
		}

		if ci, cok := cur.Init(); true {
			if oi, ook := out.Init(); oi != ci || ook != cok {
				t.Errorf("init part %q became %q", ci, oi)
			}
		}
		for _, a := range added {
			if !out.Contains(a) {
				t.Errorf("added argument %q is missing from %q", a, out)
			}
		}
		// What stays of current comes first, in its order and with its bytes; only
		// withdrawn arguments may be missing from it, one copy each.
		outArgs, curArgs := out.Args(), cur.Args()
		kept, j := 0, 0
		for _, a := range curArgs {
			if j < len(outArgs) && outArgs[j].String() == a.String() {
				j++
				kept++
				continue
			}
			if !containsArg(withdrawn, a) {
				t.Errorf("machine argument %q was dropped: %q became %q", a, cur, out)
			}
		}
		for _, a := range withdrawn {
			if count(curArgs, a) > 0 && count(outArgs, a) != count(curArgs, a)-1 {
				t.Errorf("withdrawn %q: %d copies became %d, want one fewer", a, count(curArgs, a), count(outArgs, a))
			}
		}
		for _, a := range outArgs[kept:] {
			if !containsArg(added, a) {
				t.Errorf("appended %q is not an argument the new image added", a)
			}
		}

		if same, err := Reconcile(cur, newSet, newSet); err != nil || same.String() != cur.String() {
			t.Errorf("reconciling with an unchanged image changed %q to %q (%v)", cur, same, err)
		}
		if again, err := Reconcile(out, newSet, newSet); err != nil || again.String() != out.String() {
			t.Errorf("applying the same image twice changed %q to %q (%v)", out, again, err)
		}
	})
}

func count(args []cmdline.Arg, a cmdline.Arg) int {
	n := 0
	for _, b := range args {
		if b.Equal(a) {
			n++
		}
	}
	return n
}

// imageRoot makes an image root whose kargs.d holds data as its one file.
func imageRoot(t *testing.T, data []byte) string {
	root := t.TempDir()
	dir := filepath.Join(root, Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "10-image.toml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}
