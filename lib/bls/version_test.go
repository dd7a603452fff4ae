package bls

import "testing"

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"2", "10", -1},
		{"6.12.0-1", "6.12.0-10", -1},
		{"6.12.0-10.fc41.x86_64", "6.12.0-9.fc41.x86_64", 1},
		{"6.12.0-100.fc41.x86_64", "6.13.0-1.fc41.x86_64", -1},
		{"007", "7", 0},
		{"10.0001", "10.1", 0},
		{"10.0001", "10.0039", -1},
		{"4.999.9", "5.0", -1},
		{"11", "11", 0},
		{"systemd-123", "systemd-123", 0},
		{"bar-123", "foo-123", -1},
		{"123a", "123", 1},
		{"123.a", "123", 1},
		{"123.a", "123.b", -1},
		{"123a", "123.a", 1},
		{"A", "a", -1},
		{"1.0aa", "1.0a", 1},
		{"", "0", -1},
		{"0.", "0", 1},
		{"0.0", "0", 1},
		{"123..0", "123.0", -1},
		// Characters outside [A-Za-z0-9~^.-] only separate parts.
		{"1_", "1", 0},
		{"_1", "1", 0},
		{"1+", "1", 0},
		{"1_", "1.2", -1},
		{"1_2_3", "1.3.3", 1},
		{"2.0", "2_0", -1},
		{"11α", "11β", 0},
		{"", "_", 0},
		// '~' sorts below everything, even the end of the string.
		{"1.0~rc1", "1.0", -1},
		{"1.0~rc1", "1.0~rc2", -1},
		{"1.0~rc1~git1", "1.0~rc1", -1},
		{"~", "", -1},
		{"~", "0", -1},
		{"~", "~", 0},
		{"~1", "", -1},
		// '^' sorts above the end of the string but below '.' and plain parts.
		{"1.0^", "1.0", 1},
		{"1.0^git1", "1.0", 1},
		{"1.0^git1", "1.01", -1},
		{"1.0^20160101", "1.0.1", -1},
		{"1.0^20160102", "1.0^20160101^git1", 1},
		{"123^45-67.89", "123.45-67.89", -1},
		{"123-99.99", "123^aa2-67.89", -1},
		{"1.0~rc1^git1", "1.0~rc1", 1},
		{"1.0^git1~pre", "1.0^git1", -1},
		// A numeric part beats an alphabetic one.
		{"xyz.4", "8", -1},
		{"123-a", "123-1", -1},
		{"10xyz", "10.1xyz", 1},
		{"1b.fc17", "1.fc17", 1},
	} {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d; want %d", tc.a, tc.b, got, tc.want)
		}
		if got := CompareVersions(tc.b, tc.a); got != -tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d; want %d (antisymmetry)", tc.b, tc.a, got, -tc.want)
		}
	}
}

// The ordered chain from the Version Format Specification: every element is older than every element
// after it.
func TestCompareVersionsChain(t *testing.T) {
	chain := []string{
		"~1", "", "ab", "abb", "abc", "0001", "002", "12", "122", "122.1", "122.9", "123~rc1", "123~rc1-1",
		"123", "123-a", "123-a.1", "123-a1", "123-1", "123-1.1", "123^post1", "123.a-1", "123.1-1",
		"123a-1", "124-1",
	}
	for i := range chain {
		if got := CompareVersions(chain[i], chain[i]); got != 0 {
			t.Errorf("CompareVersions(%q, itself) = %d", chain[i], got)
		}
		for j := i + 1; j < len(chain); j++ {
			if got := CompareVersions(chain[i], chain[j]); got != -1 {
				t.Errorf("CompareVersions(%q, %q) = %d; want -1", chain[i], chain[j], got)
			}
			if got := CompareVersions(chain[j], chain[i]); got != 1 {
				t.Errorf("CompareVersions(%q, %q) = %d; want 1", chain[j], chain[i], got)
			}
		}
	}
}
