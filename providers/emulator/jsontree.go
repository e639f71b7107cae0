package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// parseJSON reads exactly one JSON value from b.
func parseJSON(b []byte) (*node, error) {
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
