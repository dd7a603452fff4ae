package store

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"sort"
)

// keyDomain separates object keys from any other sha256 in the system and
// versions the encoding: changing it must change every key.
const keyDomain = "gobootc.dev/store object v1\x00"

// objectKey hashes everything that makes two regular files interchangeable as
// one inode: content, permission bits including setuid/setgid/sticky, owner and
// xattrs (security.capability among them). Fields are fixed-width or
// length-prefixed, so no two different inputs share an encoding. mtime is left
// out on purpose: objects carry a fixed mtime (see the package comment).
func objectKey(content [sha256.Size]byte, mode, uid, gid uint32, xattrs map[string][]byte) string {
	h := sha256.New()
	h.Write([]byte(keyDomain))
	h.Write(content[:])
	var b [4]byte
	put := func(v uint32) {
		binary.BigEndian.PutUint32(b[:], v)
		h.Write(b[:])
	}
	put(mode & 0o7777)
	put(uid)
	put(gid)
	names := make([]string, 0, len(xattrs))
	for n := range xattrs {
		names = append(names, n)
	}
	sort.Strings(names)
	put(uint32(len(names)))
	for _, n := range names {
		put(uint32(len(n)))
		h.Write([]byte(n))
		put(uint32(len(xattrs[n])))
		h.Write(xattrs[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// objectRel is the object's path relative to objects/: a two-digit fan-out
// keeps directories small.
func objectRel(key string) string { return key[:2] + "/" + key[2:] }

func validKey(key string) bool {
	if len(key) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
