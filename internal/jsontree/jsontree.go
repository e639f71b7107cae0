// Package jsontree is crier's one order-keeping JSON decoder: it reads a
// JSON value into a tree that keeps what encoding/json's maps lose, the
// order of an object's members and their duplicates, and each value's raw
// bytes. The segment and GeoJSON readers use it to name the exact path of
// a bad value and refuse duplicate members; the emulator uses it to answer
// as Google does, naming map entries by position.
package jsontree

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/crier-push/crier"
)

// Kind is the kind of a JSON value.
type Kind uint8

// The kinds.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

// Node is one JSON value.
type Node struct {
	Kind    Kind
	Members []Member // an object's, in order
	Items   []*Node  // an array's
	Str     string
	Num     json.Number
	Bool    bool
	// Raw is the value's text in the input.
	Raw []byte
}

// Member is one member of an object.
type Member struct {
	Name  string
	Value *Node
}

// What names the node's kind for error messages: "an object", "a number".
func (n *Node) What() string {
	switch n.Kind {
	case Object:
		return "an object"
	case Array:
		return "an array"
	case String:
		return "a string"
	case Number:
		return "a number"
	case Bool:
		return "a boolean"
	}
	return "null"
}

// Get is the first member of an object by that name, nil if it has none.
func (n *Node) Get(name string) *Node {
	if n == nil || n.Kind != Object {
		return nil
	}
	for _, m := range n.Members {
		if m.Name == name {
			return m.Value
		}
	}
	return nil
}

// Float reads the value as a finite number; refusals name path.
func (n *Node) Float(path string) (float64, error) {
	if n.Kind != Number {
		return 0, crier.Invalid(path, "must be a number, not %s", n.What())
	}
	f, err := strconv.ParseFloat(string(n.Num), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, crier.Invalid(path, "must be a finite number")
	}
	return f, nil
}

// String renders the value as Google quotes it in "Invalid value" messages.
func (n *Node) String() string {
	switch n.Kind {
	case String:
		b, _ := json.Marshal(n.Str)
		return string(b)
	case Number:
		return n.Num.String()
	case Bool:
		return strconv.FormatBool(n.Bool)
	case Null:
		return "null"
	}
	return string(n.Raw)
}

// Parse reads exactly one JSON value from b, keeping duplicate members.
// Valid JSON is read by a scanner of its own, several times faster than
// encoding/json's tokens; anything else, and strings with escapes, go
// through encoding/json, whose errors it returns (FuzzParse checks the two
// agree).
func Parse(b []byte) (*Node, error) {
	if json.Valid(b) {
		s := scanner{src: b}
		if n, ok := s.value(); ok {
			return n, nil
		}
	}
	return parseTokens(&reader{}, b)
}

// parseTokens reads one value with encoding/json's tokens.
func parseTokens(r *reader, b []byte) (*Node, error) {
	r.dec, r.src = json.NewDecoder(bytes.NewReader(b)), b
	r.dec.UseNumber()
	n, err := r.value()
	if err != nil {
		return nil, err
	}
	if _, err := r.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return n, nil
}

// Strict says how ParseStrict bounds its input.
type Strict struct {
	// Root names the value in error paths ("segment").
	Root string
	// MaxBytes and MaxDepth bound the input; zero for no bound.
	MaxBytes, MaxDepth int
}

// ParseStrict reads exactly one JSON value as crier reads its own inputs:
// duplicate members, nesting past MaxDepth, trailing data and syntax errors
// are refused with a *crier.Error naming the JSON path where they are
// ("segment.and[1].near").
func ParseStrict(b []byte, s Strict) (*Node, error) {
	if s.MaxBytes > 0 && len(b) > s.MaxBytes {
		return nil, crier.Invalid(s.Root, "must be at most %d bytes of JSON", s.MaxBytes)
	}
	r := &reader{dec: json.NewDecoder(bytes.NewReader(b)), src: b, strict: true, path: []string{s.Root}, maxDepth: s.MaxDepth}
	if json.Valid(b) {
		sc := scanner{src: b}
		if n, ok := sc.value(); ok {
			return n, r.check(n)
		}
	}
	r.dec.UseNumber()
	n, err := r.value()
	if err != nil {
		return nil, err
	}
	if _, err := r.dec.Token(); err != io.EOF {
		return nil, crier.Invalid(s.Root, "invalid JSON: data after the value")
	}
	return n, nil
}

// reader reads a value with encoding/json's tokens; a strict one tracks
// the path and refuses duplicates and depth.
type reader struct {
	dec      *json.Decoder
	src      []byte
	strict   bool
	path     []string
	maxDepth int
}

func (r *reader) errorf(format string, args ...any) error {
	return crier.Invalid(strings.Join(r.path, ""), format, args...)
}

func (r *reader) syntax(err error) error {
	if !r.strict {
		return err
	}
	if errors.Is(err, io.EOF) {
		return r.errorf("invalid JSON: unexpected end of input")
	}
	return r.errorf("invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func (r *reader) push(p string) { r.path = append(r.path, p) }
func (r *reader) pop()          { r.path = r.path[:len(r.path)-1] }

func (r *reader) tooDeep() bool {
	return r.strict && r.maxDepth > 0 && len(r.path) > r.maxDepth
}

func (r *reader) value() (*Node, error) {
	if r.tooDeep() {
		return nil, r.errorf("JSON nested more than %d levels deep", r.maxDepth)
	}
	start := r.dec.InputOffset()
	tok, err := r.dec.Token()
	if err != nil {
		return nil, r.syntax(err)
	}
	n := &Node{}
	switch t := tok.(type) {
	case nil:
		n.Kind = Null
	case bool:
		n.Kind, n.Bool = Bool, t
	case json.Number:
		n.Kind, n.Num = Number, t
	case string:
		n.Kind, n.Str = String, t
	case json.Delim:
		if err := r.container(n, t); err != nil {
			return nil, err
		}
	}
	n.Raw = bytes.TrimLeft(r.src[start:r.dec.InputOffset()], " \t\r\n,:")
	return n, nil
}

func (r *reader) container(n *Node, open json.Delim) error {
	switch open {
	case '{':
		n.Kind = Object
		for r.dec.More() {
			kt, err := r.dec.Token()
			if err != nil {
				return r.syntax(err)
			}
			name, ok := kt.(string)
			if !ok {
				return r.errorf("invalid JSON: object key %v is not a string", kt)
			}
			r.push("." + name)
			if r.strict && n.Get(name) != nil {
				return r.errorf("duplicate key")
			}
			v, err := r.value()
			if err != nil {
				return err
			}
			r.pop()
			n.Members = append(n.Members, Member{Name: name, Value: v})
		}
	case '[':
		n.Kind = Array
		for i := 0; r.dec.More(); i++ {
			r.push("[" + strconv.Itoa(i) + "]")
			v, err := r.value()
			if err != nil {
				return err
			}
			r.pop()
			n.Items = append(n.Items, v)
		}
	default:
		return r.errorf("invalid JSON: unexpected %q", open)
	}
	if _, err := r.dec.Token(); err != nil { // the closing delimiter
		return r.syntax(err)
	}
	return nil
}

// check walks a tree the scanner read for what a strict reader refuses,
// in document order: nesting past the bound and duplicate members.
func (r *reader) check(n *Node) error {
	if r.tooDeep() {
		return r.errorf("JSON nested more than %d levels deep", r.maxDepth)
	}
	for i, m := range n.Members {
		r.push("." + m.Name)
		for _, prev := range n.Members[:i] {
			if prev.Name == m.Name {
				return r.errorf("duplicate key")
			}
		}
		if err := r.check(m.Value); err != nil {
			return err
		}
		r.pop()
	}
	for i, it := range n.Items {
		r.push("[" + strconv.Itoa(i) + "]")
		if err := r.check(it); err != nil {
			return err
		}
		r.pop()
	}
	return nil
}

// scanner reads JSON that json.Valid accepted.
type scanner struct {
	src []byte
	i   int
}

func (p *scanner) skip() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\r', '\n':
			p.i++
		default:
			return
		}
	}
}

// value reads one value; ok is false when it meets what it leaves to
// encoding/json (an escaped string).
func (p *scanner) value() (*Node, bool) {
	p.skip()
	start := p.i
	n := &Node{}
	switch c := p.src[p.i]; {
	case c == '{':
		n.Kind = Object
		p.i++
		p.skip()
		if p.src[p.i] == '}' {
			p.i++
			break
		}
		for {
			p.skip()
			name, ok := p.str()
			if !ok {
				return nil, false
			}
			p.skip()
			p.i++ // ':'
			v, ok := p.value()
			if !ok {
				return nil, false
			}
			n.Members = append(n.Members, Member{Name: name, Value: v})
			p.skip()
			c := p.src[p.i]
			p.i++
			if c == '}' {
				break
			}
		}
	case c == '[':
		n.Kind = Array
		p.i++
		p.skip()
		if p.src[p.i] == ']' {
			p.i++
			break
		}
		for {
			v, ok := p.value()
			if !ok {
				return nil, false
			}
			n.Items = append(n.Items, v)
			p.skip()
			c := p.src[p.i]
			p.i++
			if c == ']' {
				break
			}
		}
	case c == '"':
		str, ok := p.str()
		if !ok {
			return nil, false
		}
		n.Kind, n.Str = String, str
	case c == 't':
		n.Kind, n.Bool = Bool, true
		p.i += 4
	case c == 'f':
		n.Kind = Bool
		p.i += 5
	case c == 'n':
		n.Kind = Null
		p.i += 4
	default: // a number
		for p.i < len(p.src) && strings.IndexByte("+-0123456789.eE", p.src[p.i]) >= 0 {
			p.i++
		}
		n.Kind, n.Num = Number, json.Number(p.src[start:p.i])
	}
	n.Raw = p.src[start:p.i]
	return n, true
}

// str reads a string without escapes and of valid UTF-8 (json.Valid lets
// invalid UTF-8 through, which encoding/json replaces).
func (p *scanner) str() (string, bool) {
	p.i++ // '"'
	start := p.i
	end := bytes.IndexByte(p.src[start:], '"')
	if end < 0 {
		return "", false
	}
	raw := p.src[start : start+end]
	if bytes.IndexByte(raw, '\\') >= 0 || !utf8.Valid(raw) {
		return "", false
	}
	p.i = start + end + 1
	return string(raw), true
}

// Dump renders every field of a tree, for tests that compare two.
func Dump(n *Node) string {
	var b strings.Builder
	var walk func(*Node)
	walk = func(n *Node) {
		fmt.Fprintf(&b, "(%d %q %q %v raw=%q", n.Kind, n.Str, n.Num, n.Bool, n.Raw)
		for _, m := range n.Members {
			fmt.Fprintf(&b, " %q:", m.Name)
			walk(m.Value)
		}
		for _, it := range n.Items {
			b.WriteString(" ")
			walk(it)
		}
		b.WriteString(")")
	}
	walk(n)
	return b.String()
}
