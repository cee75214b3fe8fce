//go:build !amd64

package shm

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"
)

// Elsewhere (arm64: loads and stores may be reordered) every word of row
// data goes through sync/atomic, whose acquire loads and release stores
// keep the data between the two sequence accesses around it.

func loadWords(dst []uint64, src unsafe.Pointer) {
	for i := range dst {
		dst[i] = atomic.LoadUint64((*uint64)(unsafe.Add(src, 8*i)))
	}
}

func storeWords(dst unsafe.Pointer, src []uint64) {
	for i, w := range src {
		atomic.StoreUint64((*uint64)(unsafe.Add(dst, 8*i)), w)
	}
}

// copyOut copies n bytes at src, which is 4 bytes past an 8-byte
// boundary (a string column's bytes), word by word.
func copyOut(dst []byte, src unsafe.Pointer, n int) {
	base := unsafe.Add(src, -4)
	var tmp [8]byte
	k := 0
	for off := 0; k < n; off += 8 {
		binary.LittleEndian.PutUint64(tmp[:], atomic.LoadUint64((*uint64)(unsafe.Add(base, off))))
		part := tmp[:]
		if off == 0 {
			part = tmp[4:]
		}
		k += copy(dst[k:n], part)
	}
}

// storeString writes a string column at col (8-byte aligned) word by
// word: its length, then its bytes.
func storeString(col unsafe.Pointer, v string) {
	var tmp [8]byte
	n := 4 + len(v)
	for off := 0; off < n; off += 8 {
		for i := range tmp {
			switch pos := off + i; {
			case pos < 4:
				tmp[i] = byte(len(v) >> (8 * pos))
			case pos < n:
				tmp[i] = v[pos-4]
			default:
				tmp[i] = 0
			}
		}
		atomic.StoreUint64((*uint64)(unsafe.Add(col, off)), binary.LittleEndian.Uint64(tmp[:]))
	}
}
