package store

import (
	"fmt"
	"path"
	"strings"
)

// layerLinks finds, while a layer is read, entries that would be written through a symlink the
// same layer made before them. Compose refuses those too, but refusing at import keeps the
// layer out of the store, so that a fetch of a hostile image fails before its image is
// recorded. (A symlink from a lower layer is only known when layers are composed.)
type layerLinks map[string]bool // paths that are symlinks in this layer so far

// check refuses e when its path or a hardlink's target lies below a symlink of this layer, then
// records what e makes of its path.
func (ll layerLinks) check(e *Entry) error {
	paths := []string{e.Path}
	if e.Type == TypeHardlink {
		paths = append(paths, e.Link)
	}
	for _, p := range paths {
		for dir := path.Dir(p); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if ll[dir] {
				return fmt.Errorf("%w: %s is a symlink earlier in this layer", ErrUnsafeEntry, dir)
			}
		}
	}
	switch e.Type {
	case TypeSymlink:
		ll[e.Path] = true
	case TypeWhiteout:
		for p := range ll {
			if p == e.Path || strings.HasPrefix(p, e.Path+"/") {
				delete(ll, p)
			}
		}
	case TypeOpaque:
	default:
		delete(ll, e.Path) // replaced by a directory, a file or a hardlink
	}
	return nil
}
