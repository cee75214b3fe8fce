package shm

import "unsafe"

// On amd64 (TSO: stores are seen in program order, loads are not
// reordered with loads), row data between two sequence accesses is
// copied with plain moves; the sequence and lock words themselves go
// through sync/atomic. A copy is a call, which the compiler keeps between
// the atomic accesses around it.

// loadWords copies len(dst) words of shared memory at src.
func loadWords(dst []uint64, src unsafe.Pointer) {
	if len(dst) > 0 {
		copy(dst, unsafe.Slice((*uint64)(src), len(dst)))
	}
}

// storeWords copies src into shared memory at dst.
func storeWords(dst unsafe.Pointer, src []uint64) {
	if len(src) > 0 {
		copy(unsafe.Slice((*uint64)(dst), len(src)), src)
	}
}

// copyOut copies n bytes of shared memory at src into dst[:n].
func copyOut(dst []byte, src unsafe.Pointer, n int) {
	copy(dst[:n], unsafe.Slice((*byte)(src), n))
}

// storeString writes a string column at col: its length, then its bytes.
func storeString(col unsafe.Pointer, v string) {
	*(*uint32)(col) = uint32(len(v))
	copy(unsafe.Slice((*byte)(unsafe.Add(col, 4)), len(v)), v)
}
