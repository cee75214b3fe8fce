package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration read from YAML as a number of seconds
// (Swoole style: 3, 0.5) or a Go duration string ("500ms", "2m"). It must
// not be negative. In JSON it is an integer number of nanoseconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d like time.Duration ("3s", "500ms").
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML implements yaml.Unmarshaler with the rules of Duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	const want = `want seconds (3, 0.5) or a duration with a unit ("500ms", "2m")`
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s, got %s", want, describe(n))
	}
	var secs float64
	switch n.ShortTag() {
	case "!!int", "!!float":
		f, err := strconv.ParseFloat(strings.ReplaceAll(n.Value, "_", ""), 64)
		if err != nil {
			// YAML spellings ParseFloat does not know (0o17, .inf) go
			// through yaml's own decoder.
			if n.Decode(&f) != nil {
				return fmt.Errorf("%s, got %s", want, describe(n))
			}
		}
		secs = f
	case "!!str":
		td, err := time.ParseDuration(n.Value)
		if err != nil {
			return fmt.Errorf("%s, got %s", want, describe(n))
		}
		if td < 0 {
			return fmt.Errorf("%s must not be negative (want 0 or more seconds)", show(n.Value))
		}
		*d = Duration(td)
		return nil
	default:
		return fmt.Errorf("%s, got %s", want, describe(n))
	}
	switch {
	case math.IsNaN(secs) || math.IsInf(secs, 0):
		return fmt.Errorf("%s, got %s", want, describe(n))
	case secs < 0:
		return fmt.Errorf("%s must not be negative (want 0 or more seconds)", show(n.Value))
	case secs*float64(time.Second) >= math.MaxInt64:
		return fmt.Errorf("%s seconds is too long (want at most %d)", show(n.Value), int64(math.MaxInt64/int64(time.Second)))
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// Size is a number of bytes read from YAML as an integer or a string with a
// binary suffix: K, KB, KiB, M, MB, MiB, G, GB, GiB (all powers of 1024,
// case-insensitive), e.g. "2M" = 2097152. In JSON it is an integer.
type Size int64

// String formats s with the largest binary unit that divides it exactly
// ("2MiB", "1536KiB", "100B").
func (s Size) String() string {
	units := []struct {
		n    Size
		name string
	}{{1 << 30, "GiB"}, {1 << 20, "MiB"}, {1 << 10, "KiB"}}
	for _, u := range units {
		if s != 0 && s%u.n == 0 {
			return strconv.FormatInt(int64(s/u.n), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// UnmarshalYAML implements yaml.Unmarshaler with the rules of Size.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	const want = `want bytes (65536) or a size with a unit ("64K", "2M", "1G")`
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s, got %s", want, describe(n))
	}
	switch n.ShortTag() {
	case "!!int":
		var v int64
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("%s is too large (want at most %d bytes)", show(n.Value), int64(math.MaxInt64))
		}
		if v < 0 {
			return fmt.Errorf("%s must not be negative (want 0 or more bytes)", show(n.Value))
		}
		*s = Size(v)
		return nil
	case "!!str":
		v, err := parseSize(n.Value)
		if errors.Is(err, errSizeRange) {
			return fmt.Errorf("%s is too large (want at most %d bytes)", show(n.Value), int64(math.MaxInt64))
		}
		if err != nil {
			return fmt.Errorf("%s, got %s", want, describe(n))
		}
		*s = v
		return nil
	}
	return fmt.Errorf("%s, got %s", want, describe(n))
}

var errSizeRange = errors.New("size out of range")

// parseSize parses "2M", "512 KiB", "1024".
func parseSize(str string) (Size, error) {
	t := strings.TrimSpace(str)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("no number")
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	var mul int64
	switch unit {
	case "", "b":
		mul = 1
	case "k", "kb", "kib":
		mul = 1 << 10
	case "m", "mb", "mib":
		mul = 1 << 20
	case "g", "gb", "gib":
		mul = 1 << 30
	default:
		return 0, errors.New("unknown unit")
	}
	v, err := strconv.ParseInt(num, 10, 64)
	if err != nil || v > math.MaxInt64/mul {
		return 0, errSizeRange
	}
	return Size(v * mul), nil
}
