package ipc

import (
	"strconv"
	"strings"
)

// The CGI layout of a Request payload (docs/protocol.md, "The CGI
// layout"), for a worker whose hello says `cgi`: one msgpack map whose
// keys are the request's CGI/1.1 meta-variables as PHP's $_SERVER names
// them (REQUEST_METHOD, REQUEST_URI, QUERY_STRING, SERVER_PROTOCOL,
// REMOTE_ADDR, REMOTE_PORT, REQUEST_SCHEME, DOCUMENT_URI, SERVER_NAME,
// CONTENT_TYPE, CONTENT_LENGTH, HTTP_*), and drover's own keys in lower
// case, which no meta-variable can be (body, body_follows, body_at,
// listener; each left out when empty, false or 0). A PHP worker decodes
// it with one call into the array its $_SERVER is made of, instead of
// building that array key by key from a header list on every request:
// the master's loop does it in Go, where it costs a fraction of what it
// costs in PHP.
//
// Header names become HTTP_ and the name in upper case with '-' as '_';
// headers whose names meet there are joined into one value, with "; "
// for Cookie and ", " for the others, as PHP's SAPIs join them. A header
// whose name has an underscore is left out, as nginx and Apache leave it
// out of a CGI environment: X_Forwarded_For would otherwise meet the
// X-Forwarded-For a proxy set.

// skipped marks, in AppendRequestCGI's first, a header left out.
const skipped = -1

// cgiFixed is how many keys every CGI-layout Request has.
const cgiFixed = 7

// cgiSmall is how many header pairs are checked for repeated names pair by
// pair; a request with more uses a map.
const cgiSmall = 32

// AppendRequestCGI appends r in the CGI layout. It allocates only to grow
// dst, or for requests with more than cgiSmall headers or repeated ones.
func AppendRequestCGI(dst []byte, r *Request) []byte {
	h := r.Headers
	pairs := len(h) / 2
	// first[i] is the pair whose key pair i's value joins (i itself when
	// it is the first with its key).
	var small [cgiSmall]int32
	var first []int32
	if pairs <= cgiSmall {
		first = small[:pairs]
	} else {
		first = make([]int32, pairs)
	}
	var seen map[string]int32
	keys, host, dups := 0, -1, false
	for i := 0; i < pairs; i++ {
		first[i] = int32(i)
		if strings.IndexByte(h[2*i], '_') >= 0 {
			first[i] = skipped
			continue
		}
		if pairs <= cgiSmall {
			for j := 0; j < i; j++ {
				if first[j] == int32(j) && sameCGIKey(h[2*j], h[2*i]) {
					first[i] = int32(j)
					break
				}
			}
		} else {
			if seen == nil {
				seen = make(map[string]int32, pairs)
			}
			k := string(appendCGIKey(nil, h[2*i]))
			if j, ok := seen[k]; ok {
				first[i] = j
			} else {
				seen[k] = int32(i)
			}
		}
		if first[i] == int32(i) {
			keys++
			if host < 0 && len(h[2*i]) == 4 && sameCGIKey(h[2*i], "host") {
				host = i
			}
		} else {
			dups = true
		}
	}
	target := r.Target
	query, path, origin := "", target, len(target) > 0 && target[0] == '/'
	if q := strings.IndexByte(target, '?'); q >= 0 {
		query, path = target[q+1:], target[:q]
	}
	addr, port := splitRemote(r.Remote)
	proto := r.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	n := cgiFixed + keys
	if origin {
		n++
	}
	var serverName string
	if host >= 0 {
		serverName = cgiServerName(joined(h, first, host))
		n++
	}
	if r.Listener != 0 {
		n++
	}
	dst = AppendMapLen(dst, n+r.bodyKeys())
	dst = AppendStr(AppendStr(dst, "REQUEST_METHOD"), r.Method)
	dst = AppendStr(AppendStr(dst, "REQUEST_URI"), target)
	dst = AppendStr(AppendStr(dst, "QUERY_STRING"), query)
	dst = AppendStr(AppendStr(dst, "SERVER_PROTOCOL"), proto)
	dst = AppendStr(AppendStr(dst, "REMOTE_ADDR"), addr)
	dst = AppendInt(AppendStr(dst, "REMOTE_PORT"), port)
	dst = AppendStr(AppendStr(dst, "REQUEST_SCHEME"), "http")
	if origin {
		dst = AppendStr(AppendStr(dst, "DOCUMENT_URI"), path)
	}
	for i := 0; i < pairs; i++ {
		if first[i] != int32(i) {
			continue
		}
		name := h[2*i]
		content := isContentKey(name)
		k := len(name)
		if !content {
			k += len("HTTP_")
			dst = append(appendStrLen(dst, k), "HTTP_"...)
		} else {
			dst = appendStrLen(dst, k)
		}
		dst = appendUpperKey(dst, name)
		if !dups {
			dst = AppendStr(dst, h[2*i+1])
			continue
		}
		size := len(h[2*i+1])
		for j := i + 1; j < pairs; j++ {
			if first[j] == int32(i) {
				size += len(joiner(name)) + len(h[2*j+1])
			}
		}
		dst = appendStrLen(dst, size)
		dst = append(dst, h[2*i+1]...)
		for j := i + 1; j < pairs; j++ {
			if first[j] == int32(i) {
				dst = append(append(dst, joiner(name)...), h[2*j+1]...)
			}
		}
	}
	if host >= 0 {
		dst = AppendStr(AppendStr(dst, "SERVER_NAME"), serverName)
	}
	if r.Listener != 0 {
		dst = AppendInt(AppendStr(dst, "listener"), int64(r.Listener))
	}
	if len(r.Body) > 0 {
		dst = AppendBin(AppendStr(dst, "body"), r.Body)
	}
	if r.BodyFollows {
		dst = AppendBool(AppendStr(dst, "body_follows"), true)
	}
	if r.BodyAt != nil {
		dst = AppendArrayLen(AppendStr(dst, "body_at"), len(r.BodyAt))
		for _, v := range r.BodyAt {
			dst = AppendInt(dst, int64(v))
		}
	}
	return dst
}

// appendStrLen appends the header of a msgpack str of n bytes.
func appendStrLen(dst []byte, n int) []byte {
	switch {
	case n <= 31:
		return append(dst, 0xa0|byte(n))
	case n <= 0xff:
		return append(dst, 0xd9, byte(n))
	case n <= 0xffff:
		return append(dst, 0xda, byte(n>>8), byte(n))
	}
	return append(dst, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// isContentKey reports whether header name's key has no HTTP_ prefix
// (Content-Type and Content-Length, as CGI names them).
func isContentKey(name string) bool {
	return (len(name) == 12 || len(name) == 14) && (sameCGIKey(name, "content-type") || sameCGIKey(name, "content-length"))
}

// appendCGIKey appends the $_SERVER key of header name.
func appendCGIKey(dst []byte, name string) []byte {
	if !isContentKey(name) {
		dst = append(dst, "HTTP_"...)
	}
	return appendUpperKey(dst, name)
}

// appendUpperKey appends name in upper case with '-' as '_'.
func appendUpperKey(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-':
			c = '_'
		case 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// sameCGIKey reports whether header names a and b have the same key:
// equal but for case and '-' against '_'.
func sameCGIKey(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if cgiFold(a[i]) != cgiFold(b[i]) {
			return false
		}
	}
	return true
}

func cgiFold(c byte) byte {
	switch {
	case c == '-':
		return '_'
	case 'a' <= c && c <= 'z':
		return c - ('a' - 'A')
	}
	return c
}

// joiner is what joins repeated values of header name.
func joiner(name string) string {
	if sameCGIKey(name, "cookie") {
		return "; "
	}
	return ", "
}

// joined is the value of pair i with those joined to it.
func joined(h []string, first []int32, i int) string {
	v := h[2*i+1]
	for j := i + 1; j < len(first); j++ {
		if first[j] == int32(i) {
			v += joiner(h[2*i]) + h[2*j+1]
		}
	}
	return v
}

// splitRemote splits "ip:port" ("[v6]:port") into the address and the
// port; an address without a numeric port (a Unix socket's) is whole, port 0.
func splitRemote(remote string) (string, int64) {
	i := strings.LastIndexByte(remote, ':')
	if i < 0 || i == len(remote)-1 || len(remote)-i > 11 {
		return remote, 0
	}
	var port int64
	for _, c := range []byte(remote[i+1:]) {
		if c < '0' || c > '9' {
			return remote, 0
		}
		port = port*10 + int64(c-'0')
	}
	addr := remote[:i]
	if addr != "" && addr[0] == '[' {
		addr = strings.Trim(addr, "[]")
	}
	return addr, port
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// cgiServerName is SERVER_NAME for a Host header: the host without its port.
func cgiServerName(host string) string {
	c := strings.LastIndexByte(host, ':')
	rb := strings.LastIndexByte(host, ']')
	if c > 0 && c > rb && allDigits(host[c+1:]) {
		return host[:c]
	}
	return host
}

// DecodeRequestCGI decodes a CGI-layout payload back into r, for a worker
// that does not take the layout (the master re-encodes a waiting request
// encoded for the others) and for tests. Header names come back in
// canonical form (User-Agent), repeated headers as one joined value; the
// content length is CONTENT_LENGTH's, or -1 for a chunked body. r.Body
// aliases payload.
func DecodeRequestCGI(payload []byte, r *Request) error {
	d := NewMsgReader(payload)
	*r = Request{Headers: r.Headers[:0]}
	n, err := d.MapLen()
	if err != nil {
		return err
	}
	var addr string
	var port int64
	chunked, haveLength := false, false
	for range n {
		key, _, err := d.Bytes()
		if err != nil {
			return err
		}
		k := string(key)
		switch k {
		case "REMOTE_PORT":
			port, err = d.Int()
		case "listener":
			var v int64
			v, err = d.Int()
			r.Listener = int(v)
		case "body":
			r.Body, _, err = d.Bytes()
		case "body_follows":
			r.BodyFollows, err = d.Bool()
		case "body_at":
			r.BodyAt, err = d.uints(nil)
		default:
			var v []byte
			if v, _, err = d.Bytes(); err != nil {
				return err
			}
			s := string(v)
			switch {
			case k == "REQUEST_METHOD":
				r.Method = s
			case k == "REQUEST_URI":
				r.Target = s
			case k == "SERVER_PROTOCOL":
				r.Proto = s
			case k == "REMOTE_ADDR":
				addr = s
			case k == "CONTENT_TYPE" || k == "CONTENT_LENGTH" || strings.HasPrefix(k, "HTTP_"):
				name := canonicalHeader(strings.TrimPrefix(k, "HTTP_"))
				r.Headers = append(r.Headers, name, s)
				if k == "CONTENT_LENGTH" {
					if l, perr := strconv.ParseInt(s, 10, 64); perr == nil {
						r.ContentLength, haveLength = l, true
					}
				}
				if k == "HTTP_TRANSFER_ENCODING" && strings.Contains(strings.ToLower(s), "chunked") {
					chunked = true
				}
			}
		}
		if err != nil {
			return err
		}
	}
	if chunked && !haveLength {
		r.ContentLength = -1
	}
	r.Remote = addr
	if port != 0 {
		r.Remote = addr + ":" + strconv.FormatInt(port, 10)
		if strings.Contains(addr, ":") {
			r.Remote = "[" + addr + "]:" + strconv.FormatInt(port, 10)
		}
	}
	return nil
}

// canonicalHeader turns a CGI key's name part (USER_AGENT) into a header
// name (User-Agent).
func canonicalHeader(k string) string {
	b := []byte(strings.ToLower(strings.ReplaceAll(k, "_", "-")))
	up := true
	for i, c := range b {
		if up && 'a' <= c && c <= 'z' {
			b[i] = c - ('a' - 'A')
		}
		up = c == '-'
	}
	return string(b)
}
