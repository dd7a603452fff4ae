package bls

import "cmp"

// CompareVersions orders two version strings as the UAPI Version Format Specification does (the
// comparison the Boot Loader Specification uses for the version key and file names, and the one
// systemd-boot and `systemd-analyze compare-versions` implement). It returns -1 when a is older, +1 when
// newer, 0 when equivalent.
//
// Digits form numeric parts compared by value, letters form alphabetic parts compared bytewise (so
// "A" < "a"), and a numeric part beats an alphabetic or missing one. At a part boundary:
// '~' sorts below anything, even the end of the string (123~rc1 < 123); '-' sorts below '^', '^' below
// '.', and '.' below a part without a separator (123-1 < 123^p < 123.1 < 123a); otherwise the string
// with more parts is newer. Every other character only separates parts.
func CompareVersions(a, b string) int {
	for {
		a, b = skipIgnored(a), skipIgnored(b)

		// '~' is checked before the end of the strings: it sorts even below nothing.
		if r, ok := prefixRule(&a, &b, '~'); ok {
			if r != 0 {
				return r
			}
		}
		if a == "" || b == "" {
			return cmp.Compare(len(a), len(b))
		}
		for _, sep := range []byte{'-', '^', '.'} {
			if r, ok := prefixRule(&a, &b, sep); ok && r != 0 {
				return r
			}
		}

		var pa, pb string
		if isDigitAt(a) || isDigitAt(b) {
			pa, a = span(a, isDigit)
			pb, b = span(b, isDigit)
			// A number is newer than no number (an alphabetic part or the end).
			switch {
			case pa == "" && pb != "":
				return -1
			case pa != "" && pb == "":
				return 1
			}
			pa, pb = trimZeros(pa), trimZeros(pb)
			if r := cmp.Compare(len(pa), len(pb)); r != 0 {
				return r
			}
			if r := cmp.Compare(pa, pb); r != 0 {
				return r
			}
		} else {
			pa, a = span(a, isAlpha)
			pb, b = span(b, isAlpha)
			n := min(len(pa), len(pb))
			if r := cmp.Compare(pa[:n], pb[:n]); r != 0 {
				return r
			}
			if r := cmp.Compare(len(pa), len(pb)); r != 0 {
				return r
			}
		}
	}
}

// prefixRule applies one separator rule: when exactly one string starts with c, that string is the
// older one (result in r); when both do, c is consumed from both. ok reports whether either started
// with c.
func prefixRule(a, b *string, c byte) (r int, ok bool) {
	ha := *a != "" && (*a)[0] == c
	hb := *b != "" && (*b)[0] == c
	switch {
	case !ha && !hb:
		return 0, false
	case ha && !hb:
		return -1, true
	case !ha && hb:
		return 1, true
	}
	*a, *b = (*a)[1:], (*b)[1:]
	return 0, true
}

func skipIgnored(s string) string {
	for s != "" && !isVersionChar(s[0]) {
		s = s[1:]
	}
	return s
}

func isVersionChar(c byte) bool {
	return isDigit(c) || isAlpha(c) || c == '~' || c == '-' || c == '^' || c == '.'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

func isDigitAt(s string) bool { return s != "" && isDigit(s[0]) }

// span splits s after its longest prefix of bytes satisfying f.
func span(s string, f func(byte) bool) (prefix, rest string) {
	i := 0
	for i < len(s) && f(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

func trimZeros(s string) string {
	for s != "" && s[0] == '0' {
		s = s[1:]
	}
	return s
}
