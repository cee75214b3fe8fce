// Package ipc is the wire between drover's processes and nothing else: the
// frame codec spoken on every worker's socket pair, the msgpack payloads of
// the structured frames, the control messages between master and manager,
// socket-pair creation and file-descriptor passing with SCM_RIGHTS, and the
// exit codes and environment variables shared by the server and the SDKs.
//
// A frame is a fixed 16-byte header followed by its payload:
//
//	offset  size  field
//	0       4     length   payload length in bytes, big-endian uint32
//	4       1     type     frame type (Type)
//	5       1     flags    per-type flags, 0 unless a type says otherwise
//	6       2     reserved must be 0
//	8       8     id       connection or request id, big-endian uint64
//
// The package logs nothing and imports nothing of drover's; errors that a
// caller branches on are sentinels (ErrFrameTooLarge, ErrBadFrame).
// docs/protocol.md is the specification for handler authors, and
// testdata/vectors.json, written from this package's encoders, is the
// conformance test of every codec of the protocol (TestVectors for this one,
// worker/php/tests/Runtime/VectorTest.php for the PHP SDK's).
package ipc
