package ipc

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// nestedHello is a valid hello with an unknown key whose value is an array
// nested depth deep.
func nestedHello(depth int) []byte {
	b := AppendMapLen(nil, 5)
	b = AppendStr(b, "version")
	b = AppendInt(b, ProtocolVersion)
	b = AppendStr(b, "pid")
	b = AppendInt(b, 42)
	b = AppendStr(b, "concurrency")
	b = AppendInt(b, 1)
	b = AppendStr(b, "role")
	b = AppendStr(b, RoleWorker)
	b = AppendStr(b, "x")
	b = append(b, bytes.Repeat([]byte{0x91}, depth)...)
	return append(b, 0xc0)
}

func TestDecodeHello(t *testing.T) {
	full := Hello{Version: 1, PID: 4242, Concurrency: 8, Role: RoleTaskWorker, SDK: "php", Flow: true, Prefetch: 1}
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := []struct {
		name    string
		payload []byte
		want    Hello
		err     string // substring of the error; "" for success
	}{
		{name: "every key", payload: enc(full), want: full},
		{name: "unknown keys and other encodings", payload: enc(map[string]any{
			"version": uint64(1), "pid": int32(7), "concurrency": uint16(300), "role": []byte("worker"),
			"extra": map[string]any{"a": []any{1, "b", nil, 2.5}}, "sdk": nil}),
			want: Hello{Version: 1, PID: 7, Concurrency: 300, Role: RoleWorker}},
		{name: "nested 32 deep is skipped", payload: nestedHello(31),
			want: Hello{Version: 1, PID: 42, Concurrency: 1, Role: RoleWorker}},
		{name: "nested 1000 deep", payload: nestedHello(1000), err: "value of \"x\""},
		{name: "over MaxHelloSize", payload: enc(map[string]any{"version": 1, "sdk": string(make([]byte, MaxHelloSize))}),
			err: "exceeds 65536"},
		{name: "not a map", payload: []byte{0x91, 0x01}, err: "want a msgpack map"},
		{name: "truncated", payload: enc(full)[:10], err: "decode *ipc.Hello"},
		{name: "wrong type", payload: enc(map[string]any{"concurrency": "lots"}), err: `value of "concurrency"`},
		{name: "huge concurrency", payload: enc(map[string]any{"concurrency": uint64(1) << 40}),
			want: Hello{Concurrency: math.MaxInt32}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeHello(tc.payload)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrBadFrame) || !bytes.Contains([]byte(err.Error()), []byte(tc.err)) {
					t.Fatalf("DecodeHello: %v, want an ErrBadFrame containing %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("DecodeHello = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// FuzzDecodeHello: DecodeHello never panics or recurses without bound, and
// whatever it accepts, the msgpack library decodes to the same Hello.
func FuzzDecodeHello(f *testing.F) {
	for _, h := range []Hello{{}, {Version: 1, PID: 1, Concurrency: 1, Role: RoleWorker, SDK: "go", Flow: true, Prefetch: 2}} {
		b, _ := msgpack.Marshal(h)
		f.Add(b)
	}
	f.Add(nestedHello(40))
	f.Add([]byte{0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, err := DecodeHello(payload)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if got.Concurrency == math.MaxInt32 || got.Concurrency == math.MinInt32 ||
			got.Prefetch == math.MaxInt32 || got.Prefetch == math.MinInt32 ||
			got.Version != int(int32(got.Version)) || got.PID != int(int32(got.PID)) {
			return // clamped or wrapped: the library wraps where DecodeHello clamps
		}
		var want Hello
		if err := msgpack.Unmarshal(payload, &want); err != nil {
			t.Fatalf("DecodeHello accepted %x as %+v; msgpack: %v", payload, got, err)
		}
		if got != want {
			t.Fatalf("DecodeHello = %+v, msgpack = %+v", got, want)
		}
	})
}
