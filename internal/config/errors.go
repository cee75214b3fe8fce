package config

import (
	"errors"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Error is one problem in a config file. Load, Parse and Validate return
// all problems found as one error (errors.Join of *Error values), whose text
// has one problem per line.
type Error struct {
	// File is the config file name as the user gave it; empty for Validate.
	File string
	// Line is the 1-based line of the problem; 0 when unknown.
	Line int
	// Key is the key path, e.g. "listeners[0].protocol"; empty for problems
	// of the file as a whole and for unknown top-level keys.
	Key string
	// Msg says what is wrong and, in parentheses, how to fix it.
	Msg string
}

// Error formats e as "<file>:<line>: <key>: <msg>", leaving out the parts
// that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// joinErrors returns nil for no errors, the error itself for one, and
// errors.Join for more, sorted by line (stable, so problems on one line
// keep the order they were found in).
func joinErrors(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].Line < errs[j].Line })
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// show returns s as written when it is a plain token (so paths and names
// read naturally in messages) and Go-quoted otherwise, so that a message
// stays on one line whatever the file contains.
func show(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if r == '"' || r == '\\' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// describe names what a node holds, for "want X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// suggest returns the known key closest to an unknown one: the same
// ignoring case, '-' and '_', within edit distance 2, or sharing a prefix
// of at least 4 characters with it (the first such key in order wins).
// It returns "" when nothing is close.
func suggest(unknown string, known []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	u := norm(unknown)
	best, bestDist := "", 3
	for _, k := range known {
		if d := levenshtein(u, norm(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return best
	}
	for _, k := range known {
		if n := commonPrefix(u, norm(k)); n >= 4 && (n == len(u) || n == len(k)) {
			return k
		}
	}
	return ""
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// levenshtein is the edit distance between a and b, in bytes. Keys are
// short; inputs longer than 64 bytes are never close to one.
func levenshtein(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// quoteList formats "a, b, c or d".
func quoteList(items []string, conj string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + conj + " " + items[len(items)-1]
}

// KeyError is a problem with key found after the file was loaded, such as
// a listener address that cannot be bound: an *Error carrying c's file
// and the line of key (or of its nearest enclosing key), as the problems
// Load finds. The file is read again for the line (a Config keeps no
// positions); when it cannot be, the error has no line, and without a file
// (a Config built in code) it is "<key>: <msg>".
func (c *Config) KeyError(key, msg string) *Error {
	e := &Error{File: c.File, Key: key, Msg: msg}
	if c.File == "" {
		return e
	}
	data, err := os.ReadFile(c.File)
	if err != nil {
		return e
	}
	d := newDecoder(c.File)
	if d.decode(data, &Config{}) {
		e.Line = (&validator{lines: d.lines}).lineOf(key)
	}
	return e
}
