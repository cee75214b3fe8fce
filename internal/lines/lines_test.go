package lines

import (
	"strings"
	"testing"
)

func TestPump(t *testing.T) {
	long := strings.Repeat("a", 40)
	in := "short\r\n" + long + "\n\nno newline"
	type piece struct {
		s    string
		more bool
	}
	var got []piece
	if err := Pump(strings.NewReader(in), 16, func(s string, more bool) { got = append(got, piece{s, more}) }); err != nil {
		t.Fatal(err)
	}
	want := []piece{{"short", false}, {long[:16], true}, {long[16:32], true}, {long[32:], false}, {"", false}, {"no newline", false}}
	if len(got) != len(want) {
		t.Fatalf("pieces %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("piece %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
