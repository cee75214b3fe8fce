package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// The decoder walks the yaml.Node tree against the Go types, using their
// yaml tags, so that every problem is reported with its line and every
// problem is found in one pass. It records the line of each key path it
// meets (for validation errors later) and which keys were given a value
// (so that defaults never override what the user wrote).

// maxMerged bounds the keys pulled in through "<<" merge keys, so that a
// file of nested merges cannot make the walk exponential.
const maxMerged = 10000

type decoder struct {
	name   string
	errs   []*Error
	lines  map[string]int  // key path → line of the key (or list item)
	set    map[string]bool // key paths given a non-null value
	bad    map[string]bool // key paths whose value could not be decoded
	merged int             // keys pulled in by merge keys so far
	// lookup reads drover's environment for ${NAME} in values (expand.go).
	lookup func(string) (string, bool)
}

func newDecoder(name string) *decoder {
	return &decoder{name: name, lines: map[string]int{}, set: map[string]bool{}, bad: map[string]bool{}, lookup: os.LookupEnv}
}

func (d *decoder) errorAt(line int, key, msg string) {
	d.errs = append(d.errs, &Error{File: d.name, Line: line, Key: key, Msg: msg})
}

// badValue reports a value that could not be decoded; validation stays
// quiet about key, whose field was left at its zero value.
func (d *decoder) badValue(line int, key, msg string) {
	d.bad[key] = true
	d.errorAt(line, key, msg)
}

func (d *decoder) err() error { return joinErrors(d.errs) }

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml.v3 parse error into our format, keeping its line.
func (d *decoder) syntaxError(err error) {
	line, msg := 1, strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLineErr.FindStringSubmatch(err.Error()); m != nil {
		if n, convErr := strconv.Atoi(m[1]); convErr == nil {
			line, msg = n, m[2]
		}
	}
	msg = strings.ReplaceAll(msg, "\n", " ")
	hint := "check the indentation and quoting on this line and the one before"
	if strings.Contains(msg, "unknown escape character") {
		hint = `in double quotes a backslash starts an escape: write a PHP class name in single quotes, 'Drover\Symfony\Runtime', or double each backslash`
	}
	d.errorAt(line, "", "YAML syntax error: "+msg+" ("+hint+")")
}

// decode fills c from data. It returns false when the file could not be
// walked at all (syntax error, empty, not a mapping); d.errs says why.
func (d *decoder) decode(data []byte, c *Config) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errorAt(1, "", emptyFile)
		} else {
			d.syntaxError(err)
		}
		return false
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		d.errorAt(extra.Line, "", "a second YAML document starts here (keep one document per file)")
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
		return false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		d.errorAt(1, "", emptyFile)
		return false
	}
	root := deref(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		d.errorAt(1, "", emptyFile)
		return false
	}
	if root.Kind != yaml.MappingNode {
		d.errorAt(root.Line, "", "the file must be a mapping of keys to values, got "+describe(root)+
			" (start with e.g. worker_num: 2; see docs/configuration.md)")
		return false
	}
	d.lines[""] = root.Line
	d.mapping("", root, reflect.ValueOf(c).Elem())
	return true
}

const emptyFile = "empty file (want at least a worker and a listener, e.g. worker: {cmd: [./bin/app]} and " +
	"listeners: [{address: \"tcp://127.0.0.1:9501\", protocol: http}]; see docs/configuration.md)"

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// pair is one key: value of a mapping; merged pairs come from "<<" keys.
type pair struct {
	key, val *yaml.Node
	merged   bool
}

// pairs lists the entries of mapping n: its own first, then those merged in
// by "<<" keys in order, so that the first occurrence of a key wins as YAML
// merge keys require.
func (d *decoder) pairs(path string, n *yaml.Node, merged bool) []pair {
	var own, more []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge" {
			more = append(more, d.mergeValue(path, k, v)...)
			continue
		}
		own = append(own, pair{k, v, merged})
	}
	return append(own, more...)
}

func (d *decoder) mergeValue(path string, k, v *yaml.Node) []pair {
	v = deref(v)
	var maps []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		maps = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, item := range v.Content {
			maps = append(maps, deref(item))
		}
	}
	var out []pair
	for _, m := range maps {
		if m.Kind != yaml.MappingNode {
			d.errorAt(k.Line, path, "<< wants a mapping or a list of mappings, got "+describe(m)+" (e.g. <<: *defaults)")
			return nil
		}
		d.merged += len(m.Content) / 2
		if d.merged > maxMerged {
			d.errorAt(k.Line, path, fmt.Sprintf("more than %d keys merged with << (flatten the anchors)", maxMerged))
			return nil
		}
		out = append(out, d.pairs(path, m, true)...)
	}
	if len(maps) == 0 {
		d.errorAt(k.Line, path, "<< wants a mapping or a list of mappings, got "+describe(v)+" (e.g. <<: *defaults)")
	}
	return out
}

// field is one settable struct field, named by its yaml tag.
type field struct {
	name   string
	index  int
	fields bool // a string value is split with strings.Fields (cmd)
}

func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out = append(out, field{name: name, index: i, fields: f.Tag.Get("split") == "fields"})
	}
	return out
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for _, f := range fieldsOf(t) {
		keys = append(keys, f.name)
	}
	return keys
}

func joinKey(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// mapKey is the path of a user-chosen map key (worker.env.NAME): dotted
// when the key is a plain name, bracketed and quoted otherwise.
func mapKey(path, key string) string {
	for _, r := range key {
		if !(r == '_' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return path + "[" + strconv.Quote(key) + "]"
		}
	}
	if key == "" {
		return path + `[""]`
	}
	return joinKey(path, key)
}

// mapping fills the struct v from mapping n.
func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	fields := fieldsOf(v.Type())
	byName := make(map[string]field, len(fields))
	for _, f := range fields {
		byName[f.name] = f
	}
	seen := map[string]int{}
	for _, p := range d.pairs(path, n, false) {
		k := deref(p.key)
		if k.Kind != yaml.ScalarNode {
			d.errorAt(p.key.Line, path, "keys must be plain names, got "+describe(k)+" (write key: value)")
			continue
		}
		name := k.Value
		if first, dup := seen[name]; dup {
			if !p.merged {
				d.errorAt(p.key.Line, path, fmt.Sprintf("duplicate key %q (first set on line %d; keep one)", name, first))
			}
			continue
		}
		seen[name] = p.key.Line
		f, ok := byName[name]
		if !ok {
			d.errorAt(p.key.Line, path, unknownKey(v.Type(), name))
			if s := suggest(name, keysOf(v.Type())); s != "" {
				// Most likely the misspelt key was meant to set s: do not
				// also report s as missing.
				d.bad[joinKey(path, s)] = true
			}
			continue
		}
		key := joinKey(path, name)
		d.lines[key] = p.key.Line
		if isNull(deref(p.val)) {
			continue // "key:" with no value means "use the default"
		}
		d.set[key] = true
		d.value(key, p.key.Line, p.val, v.Field(f.index), f.fields)
	}
}

// unknownKey words the error for key name in a mapping of type t: a close
// match, the section the key belongs to, or the list of valid keys.
func unknownKey(t reflect.Type, name string) string {
	keys := keysOf(t)
	if s := suggest(name, keys); s != "" {
		return fmt.Sprintf("unknown key %q (did you mean %q?)", name, s)
	}
	has := func(t reflect.Type) bool {
		for _, k := range keysOf(t) {
			if k == name {
				return true
			}
		}
		return false
	}
	top, handler, listener := reflect.TypeFor[Config](), reflect.TypeFor[Handler](), reflect.TypeFor[Listener]()
	switch {
	case t == top && has(handler):
		return fmt.Sprintf("unknown key %q (%s belongs under worker: or task_worker:)", name, name)
	case t == top && has(listener):
		return fmt.Sprintf("unknown key %q (%s belongs to an entry of listeners:)", name, name)
	case t != top && has(top):
		return fmt.Sprintf("unknown key %q (%s is a top-level key; move it out of this section)", name, name)
	case len(keys) <= 12:
		return fmt.Sprintf("unknown key %q (want %s)", name, quoteList(keys, "or"))
	}
	return fmt.Sprintf("unknown key %q (see docs/configuration.md for the valid keys)", name)
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// scalarSetter is a struct that a value other than a mapping sets too
// (worker_num: 4, or worker_num: {min: 2, max: 16}).
type scalarSetter interface{ setScalar(n *yaml.Node) error }

// value decodes n into v; line is where errors about it are reported.
func (d *decoder) value(path string, line int, n *yaml.Node, v reflect.Value, split bool) {
	n, ok := d.expand(path, line, deref(n))
	if !ok {
		return
	}
	if s, ok := v.Addr().Interface().(scalarSetter); ok && n.Kind != yaml.MappingNode {
		if err := s.setScalar(n); err != nil {
			d.badValue(line, path, err.Error())
		}
		return
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.badValue(line, path, err.Error())
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.badValue(line, path, "want a mapping (indented key: value lines), got "+describe(n))
			return
		}
		d.mapping(path, n, v)
	case reflect.Slice:
		d.slice(path, line, n, v, split)
	case reflect.Map:
		if v.Type().Elem().Kind() == reflect.Struct {
			d.structMap(path, line, n, v) // tables:
			return
		}
		d.stringMap(path, line, n, v)
	case reflect.Int:
		var i int
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil {
			d.badValue(line, path, "want an integer, got "+describe(n))
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.badValue(line, path, "want true or false, got "+describe(n))
			return
		}
		v.SetBool(b)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.badValue(line, path, "want a string, got "+describe(n))
			return
		}
		v.SetString(n.Value)
	default:
		// Only reachable if a field of an unsupported type is added.
		panic(fmt.Sprintf("config: no decoder for %s (%s)", path, v.Type()))
	}
}

// expand returns n with the ${NAME} in its value expanded (expand.go);
// false after reporting a variable that is unset or a malformed ${.
func (d *decoder) expand(path string, line int, n *yaml.Node) (*yaml.Node, bool) {
	x, err := expandNode(n, d.lookup)
	if err != nil {
		d.badValue(line, path, err.Error())
		return nil, false
	}
	return x, true
}

// slice decodes a list of strings or of structs. A list of strings may also
// be written as one string: split on spaces when split is set (cmd), a
// one-element list otherwise (watch).
func (d *decoder) slice(path string, line int, n *yaml.Node, v reflect.Value, split bool) {
	elem := v.Type().Elem()
	if n.Kind == yaml.ScalarNode && elem.Kind() == reflect.String {
		// n was expanded by value, which called slice.
		words := []string{n.Value}
		if split {
			words = strings.Fields(n.Value)
		}
		v.Set(reflect.ValueOf(words))
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.badValue(line, path, "want a list (lines starting with \"- \"), got "+describe(n))
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		key := fmt.Sprintf("%s[%d]", path, i)
		d.lines[key] = item.Line
		d.set[key] = true
		it := deref(item)
		if isNull(it) || elem.Kind() == reflect.String && it.Kind != yaml.ScalarNode {
			want := "a string"
			if elem.Kind() == reflect.Struct {
				want = "a mapping (indented key: value lines)"
			}
			d.badValue(item.Line, key, "want "+want+", got "+describe(it))
			continue
		}
		d.value(key, item.Line, item, out.Index(i), false)
	}
	v.Set(out)
}

// stringMap decodes a mapping of names to strings (env).
func (d *decoder) stringMap(path string, line int, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.badValue(line, path, "want a mapping of NAME: value, got "+describe(n))
		return
	}
	m := reflect.MakeMap(v.Type())
	seen := map[string]int{}
	for _, p := range d.pairs(path, n, false) {
		k, val := deref(p.key), deref(p.val)
		if k.Kind != yaml.ScalarNode {
			d.errorAt(p.key.Line, path, "keys must be plain names, got "+describe(k)+" (write NAME: value)")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			if !p.merged {
				d.errorAt(p.key.Line, path, fmt.Sprintf("duplicate key %q (first set on line %d; keep one)", k.Value, first))
			}
			continue
		}
		seen[k.Value] = p.key.Line
		key := mapKey(path, k.Value)
		d.lines[key] = p.key.Line
		d.set[key] = true
		switch {
		case isNull(val):
			m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(""))
		case val.Kind == yaml.ScalarNode:
			if val, ok := d.expand(key, p.key.Line, val); ok {
				m.SetMapIndex(reflect.ValueOf(k.Value), reflect.ValueOf(val.Value))
			}
		default:
			d.badValue(p.key.Line, key, "want a string, got "+describe(val)+" (quote it if it is meant literally)")
		}
	}
	v.Set(m)
}
