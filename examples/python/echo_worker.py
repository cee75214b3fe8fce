#!/usr/bin/env python3
"""A drover stream echo worker in Python, standard library only.

It is written from docs/protocol.md alone, without an SDK: drover starts it
(worker.cmd, launch: exec) with its socket pair to the master as fd 3. It
says hello, echoes every packet back to its connection, answers every event
with Done, exits 0 on the stop frame and 1 when the master goes away.

    worker:
      cmd: [python3, examples/python/echo_worker.py]
      launch: exec
"""

import os
import socket
import struct
import sys

# Frame header: payload length, type, flags, 2 reserved bytes, id (big-endian).
HEADER = struct.Struct(">IBBHQ")
HELLO, STOP, CONNECT, DATA, CLOSE, SEND, CLOSE_CONN, DONE = range(1, 9)
MAX_PAYLOAD = 64 << 20


def msgpack(v):
    """Encode None, bool, int, str and dict (all the hello needs) as msgpack."""
    if v is None:
        return b"\xc0"
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 0x80:
            return struct.pack("B", v)
        if -32 <= v < 0:
            return struct.pack("b", v)
        for lo, hi, code, fmt in ((0, 0xFF, 0xCC, ">B"), (0, 0xFFFF, 0xCD, ">H"),
                                  (0, 0xFFFFFFFF, 0xCE, ">I"), (0, 2**64 - 1, 0xCF, ">Q"),
                                  (-2**7, -1, 0xD0, ">b"), (-2**15, -1, 0xD1, ">h"),
                                  (-2**31, -1, 0xD2, ">i"), (-2**63, -1, 0xD3, ">q")):
            if lo <= v <= hi:
                return struct.pack(">B", code) + struct.pack(fmt, v)
        raise OverflowError(v)
    if isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            return struct.pack("B", 0xA0 | len(b)) + b
        for limit, code, fmt in ((0xFF, 0xD9, ">B"), (0xFFFF, 0xDA, ">H"), (0xFFFFFFFF, 0xDB, ">I")):
            if len(b) <= limit:
                return struct.pack(">B", code) + struct.pack(fmt, len(b)) + b
    if isinstance(v, dict):
        n = len(v)
        head = struct.pack("B", 0x80 | n) if n < 16 else struct.pack(">BH", 0xDE, n)
        return head + b"".join(msgpack(k) + msgpack(x) for k, x in v.items())
    raise TypeError(f"cannot encode {type(v).__name__}")


def frame(typ, ident, payload=b""):
    return HEADER.pack(len(payload), typ, 0, 0, ident) + payload


def open_channel():
    """The socket pair at DROVER_FD (3), or exit 1 with a hint when run by hand."""
    hint = ("this program is a drover worker: start it with "
            "`drover start -c drover.yaml` (worker.cmd), not by hand")
    if not os.environ.get("DROVER_ROLE"):
        sys.exit(f"{hint} (DROVER_ROLE is not set)")
    fd = int(os.environ.get("DROVER_FD", "3"))
    try:
        sock = socket.socket(fileno=fd)
    except OSError as e:
        sys.exit(f"{hint} (fd {fd}: {e.strerror})")
    if sock.type != socket.SOCK_STREAM:
        sys.exit(f"{hint} (fd {fd} is not a stream socket)")
    return sock


def main():
    sock = open_channel()
    hello = {"version": 1, "pid": os.getpid(), "concurrency": 1, "role": "worker", "sdk": "python"}
    sock.sendall(frame(HELLO, 0, msgpack(hello)))
    rfile = sock.makefile("rb")
    while True:
        header = rfile.read(HEADER.size)
        if len(header) < HEADER.size:
            sys.exit("master closed the channel (fd 3), exiting")
        length, typ, _flags, _reserved, conn = HEADER.unpack(header)
        if length > MAX_PAYLOAD:
            sys.exit(f"frame of {length} bytes from the master, exiting")
        payload = rfile.read(length)
        if len(payload) < length:
            sys.exit("master closed the channel (fd 3), exiting")
        if typ == STOP:
            sys.exit(0)  # nothing in flight: every event was answered already
        if typ == DATA:
            out = frame(SEND, conn, payload) + frame(DONE, conn)  # one write
        elif typ in (CONNECT, CLOSE):
            out = frame(DONE, conn)
        else:
            continue  # a newer frame type: ignored, no Done
        sock.sendall(out)


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, ConnectionResetError):
        sys.exit("master closed the channel (fd 3), exiting")
