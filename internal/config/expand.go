package config

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Environment expansion in values: ${NAME} is drover's variable NAME,
// ${NAME:-default} the same or default when NAME is unset or empty (as the
// shell). An unset NAME without a default is an error naming the key and
// line: a config must not start with an empty address or password because
// an export was forgotten.
//
// Only "${" is special, so values that hold a "$" for another reason keep
// their meaning: worker.env's "$NAME" (the manager passes the variable on)
// and "$$", a password such as "s3cr$t". Before a "{", "$$" stands for one
// "$": "$${X}" is the text "${X}", "$$${X}" a "$" followed by X's value.
// Keys are never expanded; default text is taken as written (no nesting).

// expandNode returns n, or a copy of it with its value expanded when it
// holds a "${". A copy's tag is resolved again from the expanded text, so
// worker_num: "${N}" is an integer when N is "4", as if 4 had been written.
func expandNode(n *yaml.Node, lookup func(string) (string, bool)) (*yaml.Node, error) {
	if n.Kind != yaml.ScalarNode || !strings.Contains(n.Value, "${") {
		return n, nil
	}
	v, err := expandString(n.Value, lookup)
	if err != nil {
		return nil, err
	}
	cp := *n
	cp.Value, cp.Tag, cp.Style = v, "", 0
	return &cp, nil
}

// expandString expands the ${...} in s (see above) with lookup.
func expandString(s string, lookup func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] != '$' {
			b.WriteByte(s[i])
			i++
			continue
		}
		// A run of dollars: before "{", each pair is one literal "$" and an
		// odd one starts an expansion; elsewhere the run is literal.
		j := i
		for j < len(s) && s[j] == '$' {
			j++
		}
		n := j - i
		if j >= len(s) || s[j] != '{' {
			b.WriteString(s[i:j])
			i = j
			continue
		}
		b.WriteString(strings.Repeat("$", n/2))
		if n%2 == 0 {
			b.WriteByte('{')
			i = j + 1
			continue
		}
		end := strings.IndexByte(s[j:], '}')
		if end < 0 {
			return "", fmt.Errorf("unclosed ${ (end it with }, or write $${ for a literal ${)")
		}
		expr := s[j+1 : j+end]
		i = j + end + 1
		name, def, hasDef := strings.Cut(expr, ":-")
		switch {
		case name == "":
			return "", fmt.Errorf("${%s} names no variable (want ${NAME} or ${NAME:-default}; write $${ for a literal ${)", expr)
		case !isEnvName(name):
			return "", fmt.Errorf("${%s}: %q is not a variable name (letters, digits and _, not starting with a digit; write $${ for a literal ${)", expr, name)
		}
		v, ok := lookup(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("${%s} is not set in drover's environment (export %s=..., give a default with ${%s:-value}, or write $${ for a literal ${)", name, name, name)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

func isEnvName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
