package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// node is a JSON value that keeps the order of object members, as Google's
// error messages index map entries by position ("message.data[0].value").
type node struct {
	kind    nodeKind
	members []member // objects
	items   []*node  // arrays
	str     string   // strings
	num     json.Number
	boolean bool
	raw     json.RawMessage
}

type member struct {
	name  string
	value *node
}

type nodeKind int

const (
	nullNode nodeKind = iota
	boolNode
	numberNode
	stringNode
	arrayNode
	objectNode
)

// parseJSON reads exactly one JSON value from b. Valid JSON is read by a
// scanner of its own, several times faster than encoding/json's tokens
// (the emulator parses every push it answers); anything else, and strings
// with escapes, go through encoding/json, whose errors Google's messages
// are made from (FuzzParseJSON checks the two agree).
func parseJSON(b []byte) (*node, error) {
	if json.Valid(b) {
		p := scanner{src: b}
		if n, ok := p.value(); ok {
			return n, nil
		}
	}
	return parseJSONTokens(b)
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
func (p *scanner) value() (*node, bool) {
	p.skip()
	start := p.i
	n := &node{}
	switch c := p.src[p.i]; {
	case c == '{':
		n.kind = objectNode
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
			n.members = append(n.members, member{name: name, value: v})
			p.skip()
			c := p.src[p.i]
			p.i++
			if c == '}' {
				break
			}
		}
	case c == '[':
		n.kind = arrayNode
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
			n.items = append(n.items, v)
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
		n.kind, n.str = stringNode, str
	case c == 't':
		n.kind, n.boolean = boolNode, true
		p.i += 4
	case c == 'f':
		n.kind = boolNode
		p.i += 5
	case c == 'n':
		n.kind = nullNode
		p.i += 4
	default: // a number
		for p.i < len(p.src) && strings.IndexByte("+-0123456789.eE", p.src[p.i]) >= 0 {
			p.i++
		}
		n.kind, n.num = numberNode, json.Number(p.src[start:p.i])
	}
	n.raw = p.src[start:p.i]
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

// parseJSONTokens reads one value with encoding/json's tokens.
func parseJSONTokens(b []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := readNode(dec, b)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return n, nil
}

func readNode(dec *json.Decoder, src []byte) (*node, error) {
	start := dec.InputOffset()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	n := &node{}
	switch t := tok.(type) {
	case nil:
		n.kind = nullNode
	case bool:
		n.kind, n.boolean = boolNode, t
	case json.Number:
		n.kind, n.num = numberNode, t
	case string:
		n.kind, n.str = stringNode, t
	case json.Delim:
		switch t {
		case '{':
			n.kind = objectNode
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				name, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				v, err := readNode(dec, src)
				if err != nil {
					return nil, err
				}
				n.members = append(n.members, member{name: name, value: v})
			}
		case '[':
			n.kind = arrayNode
			for dec.More() {
				v, err := readNode(dec, src)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, v)
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
	}
	n.raw = bytes.TrimLeft(src[start:dec.InputOffset()], " \t\r\n,:")
	return n, nil
}

// String renders the value as Google quotes it in "Invalid value" messages.
func (n *node) String() string {
	switch n.kind {
	case stringNode:
		b, _ := json.Marshal(n.str)
		return string(b)
	case numberNode:
		return n.num.String()
	case boolNode:
		return fmt.Sprint(n.boolean)
	case nullNode:
		return "null"
	}
	return string(n.raw)
}
