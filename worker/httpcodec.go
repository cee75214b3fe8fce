package worker

import "github.com/drover-dev/drover/ipc"

// The HTTP frames' msgpack payloads (ipc.Request, ipc.Response) are coded
// here by hand with ipc's MsgReader and Append helpers: the request path
// must not pay for reflection, and the strings of a request are cut from a
// single allocation. The decoder
// accepts what docs/protocol.md asks a reader to accept (any integer and
// string encoding, unknown keys, keys in any order) and yields what
// msgpack.Unmarshal into an ipc.Request yields; FuzzDecodeRequest holds the
// two together.

// wireRequest is a decoded ipc.Request. Its strings share one allocation;
// body aliases the payload it was decoded from.
type wireRequest struct {
	method, target, proto, remote string
	headers                       []string // name, value, …
	contentLength                 int64
	body                          []byte
	bodyFollows                   bool
	listener                      int
}

// span locates a string in the decoder's scratch buffer.
type span struct{ off, n int }

// requestDecoder decodes ipc.Request payloads; its buffers are reused.
type requestDecoder struct {
	scratch []byte
	spans   []span // headers
}

// decode fills w from payload. On error w is unusable.
func (dec *requestDecoder) decode(payload []byte, w *wireRequest) error {
	d := ipc.NewMsgReader(payload)
	*w = wireRequest{headers: w.headers[:0]}
	dec.scratch, dec.spans = dec.scratch[:0], dec.spans[:0]
	var method, target, proto, remote span
	n, err := d.MapLen()
	if err != nil {
		return err
	}
	str := func() (span, error) {
		b, _, err := d.Bytes()
		sp := span{len(dec.scratch), len(b)}
		dec.scratch = append(dec.scratch, b...)
		return sp, err
	}
	for range n {
		key, _, err := d.Bytes()
		if err != nil {
			return err
		}
		switch string(key) {
		case "method":
			method, err = str()
		case "target":
			target, err = str()
		case "proto":
			proto, err = str()
		case "remote":
			remote, err = str()
		case "headers":
			var k int
			if k, err = d.ArrayLen(); err != nil || k < 0 {
				break // nil leaves the headers as they were, as msgpack does
			}
			dec.spans = dec.spans[:0]
			for i := 0; i < k && err == nil; i++ {
				var sp span
				sp, err = str()
				dec.spans = append(dec.spans, sp)
			}
		case "content_length":
			w.contentLength, err = d.Int()
		case "listener":
			var v int64
			v, err = d.Int()
			w.listener = int(v)
		case "body":
			w.body, _, err = d.Bytes()
		case "body_follows":
			w.bodyFollows, err = d.Bool()
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	all := string(dec.scratch)
	cut := func(sp span) string { return all[sp.off : sp.off+sp.n] }
	w.method, w.target, w.proto, w.remote = cut(method), cut(target), cut(proto), cut(remote)
	for _, sp := range dec.spans {
		w.headers = append(w.headers, cut(sp))
	}
	return nil
}

// appendResponse appends an ipc.Response payload: status, headers (name,
// value, … as pairs, then extra) and body, omitted when empty.
func appendResponse(dst []byte, status int, pairs []string, extra []string, body []byte) []byte {
	return append(appendResponseHead(dst, status, pairs, extra, len(body)), body...)
}

// appendResponseHead is appendResponse without the body's bytes, which go
// right after it (the body is the encoding's last field): a large body is
// then written from where it is (ipc.Writer.WriteFrameParts).
func appendResponseHead(dst []byte, status int, pairs []string, extra []string, bodyLen int) []byte {
	if bodyLen > 0 {
		dst = ipc.AppendMapLen(dst, 3)
	} else {
		dst = ipc.AppendMapLen(dst, 2)
	}
	dst = ipc.AppendStr(dst, "status")
	dst = ipc.AppendInt(dst, int64(status))
	dst = ipc.AppendStr(dst, "headers")
	dst = ipc.AppendArrayLen(dst, len(pairs)+len(extra))
	for _, s := range pairs {
		dst = ipc.AppendStr(dst, s)
	}
	for _, s := range extra {
		dst = ipc.AppendStr(dst, s)
	}
	if bodyLen > 0 {
		dst = ipc.AppendStr(dst, "body")
		dst = ipc.AppendBinLen(dst, bodyLen)
	}
	return dst
}
