package blockdev

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/t\011x`: "/t\tx", `/bad\09`: `/bad\09`} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadOnly(t *testing.T) {
	if !(Mount{Options: "ro,relatime"}).ReadOnly() || (Mount{Options: "rw,relatime"}).ReadOnly() || (Mount{Options: "rw,errors=remount-ro"}).ReadOnly() {
		t.Error("ReadOnly reads the options wrong")
	}
}

func TestAt(t *testing.T) {
	root, err := At("/")
	if err != nil || root == nil || root.Target != "/" {
		t.Fatalf("At(/) = %+v, %v", root, err)
	}
	if m, err := At("/surely/not/a/mount/point"); err != nil || m != nil {
		t.Errorf("At(non-mount) = %+v, %v", m, err)
	}
}
