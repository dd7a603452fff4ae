// Package store keeps unpacked OCI layers as per-file, content-addressed objects and builds root trees from them with hardlinks.
//
// # Layout
//
// The store directory (in production <physical root>/bootc) is forced to mode
// 0700 so that nothing in it, setuid objects included, is reachable by
// unprivileged users:
//
//	objects/<2 hex>/<62 hex>   one regular file per distinct (content, mode incl.
//	                           setuid/setgid/sticky, uid, gid, xattrs incl.
//	                           security.capability); the name is the object key
//	layers/<diff ID hex>       JSON index of one imported layer, written last and
//	                           atomically: its presence marks the layer complete
//	tmp/                       in-flight writes on the same filesystem; emptied by Open
//
// The object key is a sha256 over a versioned, length-prefixed encoding of the
// content sha256, permission bits, owner and sorted xattrs (see objectKey).
// Deployments are trees of hardlinks to objects, so a file that is identical in
// two images, whatever the layers, is one inode on disk.
//
// Object mtimes are all the Unix epoch (0), as are those of the directories and
// symlinks Compose creates: an object is shared by every tree that contains the
// file, so it cannot carry any one image's timestamp, and a fixed value keeps
// composed trees reproducible. Tar mtimes are therefore not recorded. Owners
// are numeric; uname/gname are ignored, as container engines do.
//
// # Hostile layers
//
// Nothing a layer contains can make the store write outside its own directory
// or outside the Compose destination:
//
//   - A leading "/" is dropped ("/a" is "a"), as tar does. A path with any ".."
//     component is refused, even one that stays inside ("a/../b"): resolving it
//     lexically can disagree with the kernel once a component is a symlink, and
//     no layer producer emits it. NUL bytes, components over 255 bytes and paths
//     over 4095 bytes are refused.
//   - A path whose parent is a symlink in the merged tree (lower layers or
//     earlier in the same layer) is refused, for entries, hardlink targets and
//     whiteouts alike. Container engines disagree on its meaning (overlay-based
//     ones replace the symlink with a directory, extract-in-place ones follow
//     it), layers made by diffing a filesystem never contain one, and
//     following it is how a layer writes somewhere its index does not name.
//     A parent that is a regular file is an error too. Missing parents are
//     created as 0755 root-owned directories, as tar does.
//   - A hardlink must name a regular file already in the tree (lower layers or
//     earlier in the same layer); it becomes another link to that file's
//     object. Links to symlinks, directories, missing paths or the root are
//     refused.
//   - Character and block devices and fifos are skipped with a warning and never
//     created. Sparse members are refused: their expanded size is not bounded by
//     the stream. Unknown member types are refused.
//   - Duplicate entries within a layer: the last one wins, as with tar
//     extraction; a later non-directory replaces a directory with its subtree,
//     a directory over a directory merges and takes the newer metadata.
//   - Whiteouts (".wh.<name>") and opaque markers (".wh..wh..opq") apply to
//     lower layers only, before the layer's own entries, whatever their tar
//     order. A whiteout naming "", "." or "..", or a ".wh."-prefixed name used as
//     a directory, is refused; other ".wh..wh." names (aufs bookkeeping) are
//     skipped with a warning.
//   - Only xattrs in user.*, security.* and the POSIX ACL names are kept;
//     trusted.*, other system.* names and the overlay attributes
//     (trusted.overlay.*, user.overlay.*) are dropped with a warning because a
//     deployment serves as an overlay lower directory (usr-overlay).
//   - Compose only creates what the in-memory tree holds, each node below a
//     directory Compose itself created, with *at system calls relative to
//     directory descriptors opened O_NOFOLLOW, so the filesystem never resolves
//     a path through anything a layer controls.
//
// Every refusal is a one-line error naming the layer and the entry, wrapping
// ErrUnsafeEntry where the entry is an escape attempt.
//
// # Durability and concurrency
//
// ImportLayer publishes an object only after its data is on disk, and the
// index only after its objects are (see ImportLayer), so a crash at any point
// leaves a consistent store and rerunning the import succeeds.
//
// The store takes no lock. ImportLayer and Compose may run concurrently with
// each other. Open (which empties tmp/), Remove and GC need exclusive access:
// GC could otherwise delete an object an import has just decided to reuse.
// Callers hold the host-wide bootc lock for all writes.
package store
