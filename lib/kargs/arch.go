package kargs

import (
	"errors"
	"fmt"
	"runtime"
)

// ErrUnknownArch means an architecture has no name in the vocabulary
// kargs.d files use.
var ErrUnknownArch = errors.New("unknown architecture")

// archByGOARCH maps Go's GOARCH to the names match-architectures uses.
// Those are the Rust standard library's names, because upstream bootc is
// written in Rust and images in the wild already carry them: x86_64 where
// Debian says amd64, powerpc64 for both byte orders where Fedora says
// ppc64le.
var archByGOARCH = map[string]string{
	"386":      "x86",
	"amd64":    "x86_64",
	"arm":      "arm",
	"arm64":    "aarch64",
	"loong64":  "loongarch64",
	"mips":     "mips",
	"mipsle":   "mips",
	"mips64":   "mips64",
	"mips64le": "mips64",
	"ppc64":    "powerpc64",
	"ppc64le":  "powerpc64",
	"riscv64":  "riscv64",
	"s390x":    "s390x",
}

// ArchFromGOARCH returns the kargs.d architecture name for a Go GOARCH
// value, for example "amd64" → "x86_64" and "ppc64le" → "powerpc64".
func ArchFromGOARCH(goarch string) (string, error) {
	if a, ok := archByGOARCH[goarch]; ok {
		return a, nil
	}
	return "", fmt.Errorf("mapping GOARCH %q: %w", goarch, ErrUnknownArch)
}

// HostArch returns the kargs.d architecture name of the running binary.
func HostArch() (string, error) {
	return ArchFromGOARCH(runtime.GOARCH)
}

// checkArch refuses names outside the vocabulary, which catches a caller
// passing a Go or dpkg name ("amd64"): every file with match-architectures
// would silently stop matching.
func checkArch(arch string) error {
	for _, a := range archByGOARCH {
		if a == arch {
			return nil
		}
	}
	return fmt.Errorf("checking architecture %q: %w (want a name like x86_64 or aarch64)", arch, ErrUnknownArch)
}
