package accesslog

import (
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Request is what the line of an HTTP request says. The producer fills one
// on its stack; the Buffer keeps nothing of it.
type Request struct {
	Time     time.Time // when it ended
	Remote   string    // the client's "ip:port" ("" for a unix socket peer)
	Listener string    // the listener's address
	Method   string    // "" when the parser refused the request before its method
	Target   string
	Proto    string
	// Status is the answer's status; 0: the connection closed before any
	// answer (the client went away, or the server stopped).
	Status    int
	Bytes     int64 // written for the answer, head included
	Duration  time.Duration
	Worker    int // the worker slot that served it; -1: none
	PID       int
	Referer   string
	UserAgent string
}

// Stream is what the line of a stream connection closed says.
type Stream struct {
	Time     time.Time // when it closed
	Remote   string
	Listener string
	Duration time.Duration // since it was accepted
	BytesIn  uint64        // read from the client
	BytesOut uint64        // written to the client
	Worker   int           // the worker of its last event; -1: none
	PID      int
	Reason   string // why it closed
}

// lineMax bounds the bytes a line may take besides its strings, which
// escaping can make up to six times longer (JSON's \u00XX).
const lineMax = 400

// Request appends r's line.
func (b *Buffer) Request(r *Request) {
	b.room(lineMax + 6*(len(r.Remote)+len(r.Listener)+len(r.Method)+len(r.Target)+len(r.Proto)+len(r.Referer)+len(r.UserAgent)))
	b.stamp(r.Time)
	p := b.b
	if b.w.json {
		p = append(p, `{"time":"`...)
		p = b.jsonTime(p, r.Time)
		p = append(p, `","type":"http","remote":`...)
		p = jsonString(p, r.Remote)
		p = append(p, `,"listener":`...)
		p = jsonString(p, r.Listener)
		p = append(p, `,"method":`...)
		p = jsonString(p, r.Method)
		p = append(p, `,"target":`...)
		p = jsonString(p, r.Target)
		p = append(p, `,"proto":`...)
		p = jsonString(p, r.Proto)
		p = append(p, `,"status":`...)
		p = strconv.AppendInt(p, int64(r.Status), 10)
		p = append(p, `,"bytes":`...)
		p = strconv.AppendInt(p, r.Bytes, 10)
		p = append(p, `,"duration":`...)
		p = seconds(p, r.Duration)
		p = jsonWorker(p, r.Worker, r.PID)
		p = append(p, `,"referer":`...)
		p = jsonString(p, r.Referer)
		p = append(p, `,"user_agent":`...)
		p = jsonString(p, r.UserAgent)
		p = append(p, "}\n"...)
	} else {
		p = clfHost(p, r.Remote)
		p = append(p, " - - "...)
		p = append(p, b.clfDate...)
		p = append(p, ` "`...)
		if r.Method == "" {
			p = append(p, '-')
		} else {
			p = clfEscape(p, r.Method)
			p = append(p, ' ')
			p = clfEscape(p, r.Target)
			p = append(p, ' ')
			p = clfEscape(p, r.Proto)
		}
		p = append(p, `" `...)
		p = strconv.AppendInt(p, int64(r.Status), 10)
		p = append(p, ' ')
		p = strconv.AppendInt(p, r.Bytes, 10)
		p = append(p, ' ')
		p = clfQuoted(p, r.Referer)
		p = append(p, ' ')
		p = clfQuoted(p, r.UserAgent)
		p = append(p, " rt="...)
		p = seconds(p, r.Duration)
		p = clfWorker(p, r.Worker, r.PID)
		p = append(p, '\n')
	}
	b.b = p
	b.commit()
}

// Stream appends r's line.
func (b *Buffer) Stream(r *Stream) {
	b.room(lineMax + 6*(len(r.Remote)+len(r.Listener)+len(r.Reason)))
	b.stamp(r.Time)
	p := b.b
	if b.w.json {
		p = append(p, `{"time":"`...)
		p = b.jsonTime(p, r.Time)
		p = append(p, `","type":"stream","remote":`...)
		p = jsonString(p, r.Remote)
		p = append(p, `,"listener":`...)
		p = jsonString(p, r.Listener)
		p = append(p, `,"duration":`...)
		p = seconds(p, r.Duration)
		p = append(p, `,"bytes_in":`...)
		p = strconv.AppendUint(p, r.BytesIn, 10)
		p = append(p, `,"bytes_out":`...)
		p = strconv.AppendUint(p, r.BytesOut, 10)
		p = jsonWorker(p, r.Worker, r.PID)
		p = append(p, `,"reason":`...)
		p = jsonString(p, r.Reason)
		p = append(p, "}\n"...)
	} else {
		// Shaped as a combined line, so that one pattern reads both: the
		// request is "STREAM <listener>", there is no status, the bytes
		// are those sent.
		p = clfHost(p, r.Remote)
		p = append(p, " - - "...)
		p = append(p, b.clfDate...)
		p = append(p, ` "STREAM `...)
		p = clfEscape(p, r.Listener)
		p = append(p, `" - `...)
		p = strconv.AppendUint(p, r.BytesOut, 10)
		p = append(p, ` "-" "-" rt=`...)
		p = seconds(p, r.Duration)
		p = clfWorker(p, r.Worker, r.PID)
		p = append(p, " in="...)
		p = strconv.AppendUint(p, r.BytesIn, 10)
		p = append(p, " reason="...)
		p = clfQuoted(p, r.Reason)
		p = append(p, '\n')
	}
	b.b = p
	b.commit()
}

// commit counts the line just appended.
func (b *Buffer) commit() { b.lines++ }

// jsonTime appends t as drover's own log lines show it,
// 2006-01-02T15:04:05.000Z07:00 (b.stamp(t) first).
func (b *Buffer) jsonTime(p []byte, t time.Time) []byte {
	p = append(p, b.jsonDate...)
	ms := t.Nanosecond() / 1e6
	p = append(p, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	return append(p, b.jsonZone...)
}

// seconds appends d in seconds with microseconds: 0.000512.
func seconds(p []byte, d time.Duration) []byte {
	us := max(d.Microseconds(), 0)
	p = strconv.AppendInt(p, us/1e6, 10)
	frac := us % 1e6
	p = append(p, '.')
	for div := int64(1e5); div > 0; div /= 10 {
		p = append(p, byte('0'+frac/div%10))
	}
	return p
}

func jsonWorker(p []byte, worker, pid int) []byte {
	if worker < 0 {
		return append(p, `,"worker":null,"pid":null`...)
	}
	p = append(p, `,"worker":`...)
	p = strconv.AppendInt(p, int64(worker), 10)
	p = append(p, `,"pid":`...)
	return strconv.AppendInt(p, int64(pid), 10)
}

func clfWorker(p []byte, worker, pid int) []byte {
	if worker < 0 {
		return append(p, " worker=- pid=-"...)
	}
	p = append(p, " worker="...)
	p = strconv.AppendInt(p, int64(worker), 10)
	p = append(p, " pid="...)
	return strconv.AppendInt(p, int64(pid), 10)
}

const hex = "0123456789abcdef"

// jsonSafe and clfSafe mark the bytes each format copies as they are.
var jsonSafe, clfSafe = func() (j, c [256]bool) {
	for i := 0x20; i < 0x80; i++ {
		j[i] = i != '"' && i != '\\'
		c[i] = j[i] && i != 0x7f
	}
	return
}()

// jsonString appends s as a JSON string: quotes, backslashes and control
// characters escaped, bytes that are not UTF-8 replaced by U+FFFD, so that
// any line parses whatever the client sent.
func jsonString(p []byte, s string) []byte {
	p = append(p, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if jsonSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			p = append(p, s[start:i]...)
			switch c {
			case '"', '\\':
				p = append(p, '\\', c)
			case '\n':
				p = append(p, '\\', 'n')
			case '\r':
				p = append(p, '\\', 'r')
			case '\t':
				p = append(p, '\\', 't')
			default:
				p = append(p, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			p = append(p, s[start:i]...)
			p = append(p, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	p = append(p, s[start:]...)
	return append(p, '"')
}

// clfEscape appends s as nginx writes a variable in its access log: '"'
// and '\' escaped with a backslash, bytes below 0x20 or from 0x7f as \xHH.
func clfEscape(p []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if clfSafe[c] {
			continue
		}
		p = append(p, s[start:i]...)
		if c == '"' || c == '\\' {
			p = append(p, '\\', c)
		} else {
			p = append(p, '\\', 'x', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	return append(p, s[start:]...)
}

// clfQuoted appends s quoted and escaped, or "-" when empty.
func clfQuoted(p []byte, s string) []byte {
	if s == "" {
		return append(p, `"-"`...)
	}
	p = append(p, '"')
	p = clfEscape(p, s)
	return append(p, '"')
}

// clfHost appends the host of a remote "ip:port" ("[ip6]:port"), or "-".
func clfHost(p []byte, remote string) []byte {
	host := remote
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			host = host[1:i]
		}
	} else if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host, '/') < 0 {
		host = host[:i]
	}
	if host == "" {
		return append(p, '-')
	}
	return clfEscape(p, host)
}
