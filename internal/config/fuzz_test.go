package config

import (
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every line of an error
// starts with the file name (one problem per line, whatever the input),
// and that a config it accepts passes Validate unchanged and survives the
// JSON trip to the manager. Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	fx := newFixture(f)
	f.Add([]byte(minimal))
	f.Add([]byte(minimal + "worker_num: two\nwroker_num: 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, fx.conf)
		if err != nil {
			if c != nil {
				t.Errorf("Parse returned a config and an error")
			}
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml:") {
					t.Fatalf("error line does not start with the file name: %q", line)
				}
			}
			return
		}
		before := clone(t, c)
		if !reflect.DeepEqual(before, c) {
			t.Fatalf("JSON round trip changed the config:\n%+v\n%+v", before, c)
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate rejects what Parse accepted: %v", err)
		}
		if !reflect.DeepEqual(before, c) {
			t.Fatalf("Validate changed the config:\n%+v\n%+v", c, before)
		}
	})
}
