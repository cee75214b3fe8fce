package ipc

// The HTTP frames' msgpack payloads (Request, Response) are coded by hand
// with MsgReader and the Append helpers, on both sides of the channel: the
// master appends Requests (AppendRequest) and decodes Responses
// (ResponseView), the Go SDK decodes Requests (RequestDecoder) and appends
// Responses (AppendResponse). The request path must not pay for
// reflection. The decoders accept what docs/protocol.md asks a reader to
// accept (any integer and string encoding, unknown keys, keys in any
// order) and yield what msgpack.Unmarshal yields (FuzzDecodeRequest holds
// the two together); the encoders write the encoding of
// testdata/vectors.json, which the PHP SDK's Codec writes too.

// span locates a string in the decoder's scratch buffer.
type span struct{ off, n int }

// RequestDecoder decodes Request payloads without reflection; its buffers
// are reused from one Decode to the next. The zero value is ready to use.
// It is not safe for concurrent use.
type RequestDecoder struct {
	scratch []byte
	spans   []span    // headers
	at      [2]uint64 // body_at's storage
}

// Decode fills r from a TypeRequest payload, reusing r.Headers' capacity.
// The strings of r (method, target, proto, remote, headers) share one
// allocation; r.Body aliases payload. On error r is unusable.
func (dec *RequestDecoder) Decode(payload []byte, r *Request) error {
	d := NewMsgReader(payload)
	*r = Request{Headers: r.Headers[:0]}
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
			r.ContentLength, err = d.Int()
		case "listener":
			var v int64
			v, err = d.Int()
			r.Listener = int(v)
		case "body":
			r.Body, _, err = d.Bytes()
		case "body_follows":
			r.BodyFollows, err = d.Bool()
		case "body_at":
			r.BodyAt, err = d.uints(dec.at[:0])
		default:
			err = d.Skip()
		}
		if err != nil {
			return err
		}
	}
	all := string(dec.scratch)
	cut := func(sp span) string { return all[sp.off : sp.off+sp.n] }
	r.Method, r.Target, r.Proto, r.Remote = cut(method), cut(target), cut(proto), cut(remote)
	for _, sp := range dec.spans {
		r.Headers = append(r.Headers, cut(sp))
	}
	return nil
}

// AppendResponse appends a Response payload: status, headers (name, value,
// … as pairs, then extra) and body, omitted when empty. It allocates only
// to grow dst.
func AppendResponse(dst []byte, status int, pairs []string, extra []string, body []byte) []byte {
	return append(AppendResponseHead(dst, status, pairs, extra, len(body)), body...)
}

// AppendResponseHead is AppendResponse without the body's bytes, which go
// right after it (the body is the encoding's last field): a large body is
// then written from where it is (Writer.WriteFrameParts).
func AppendResponseHead(dst []byte, status int, pairs []string, extra []string, bodyLen int) []byte {
	if bodyLen > 0 {
		dst = AppendMapLen(dst, 3)
	} else {
		dst = AppendMapLen(dst, 2)
	}
	dst = AppendStr(dst, "status")
	dst = AppendInt(dst, int64(status))
	dst = AppendStr(dst, "headers")
	dst = AppendArrayLen(dst, len(pairs)+len(extra))
	for _, s := range pairs {
		dst = AppendStr(dst, s)
	}
	for _, s := range extra {
		dst = AppendStr(dst, s)
	}
	if bodyLen > 0 {
		dst = AppendStr(dst, "body")
		dst = AppendBinLen(dst, bodyLen)
	}
	return dst
}
