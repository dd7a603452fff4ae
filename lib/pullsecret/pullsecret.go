// Package pullsecret finds the credentials bootc pulls with: its own, never a user's.
package pullsecret

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Paths are searched in order, first match wins: the paths ostree-based bootc uses, so one secret
// serves the host image and its bound images. They are paths of the running system, not of a
// --sysroot.
var Paths = []string{"/run/ostree/auth.json", "/etc/ostree/auth.json", "/usr/lib/ostree/auth.json"}

// Find returns explicit when given (it must exist), else the first of search (nil: Paths) that
// exists, else "" for an anonymous pull. A secret that is there but cannot be checked is an
// error, not a reason to pull anonymously.
func Find(explicit string, search []string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("pull secret: %w", err)
		}
		return explicit, nil
	}
	if search == nil {
		search = Paths
	}
	for _, p := range search {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("pull secret: %w", err)
		}
	}
	return "", nil
}
