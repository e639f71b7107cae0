package segments

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// jv is a decoded JSON value that keeps what encoding/json's maps lose: the
// order of an object's members, and with it the duplicates we reject.
type jv struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	keys []string
	vals []*jv
	arr  []*jv
	str  string
	num  json.Number
	b    bool
}

func (v *jv) what() string {
	switch v.kind {
	case 'o':
		return "an object"
	case 'a':
		return "an array"
	case 's':
		return "a string"
	case 'n':
		return "a number"
	case 'b':
		return "a boolean"
	}
	return "null"
}

// maxJSONDepth bounds the nesting of the raw JSON before any grammar applies:
// enough for MaxDepth nodes with a multipolygon at the bottom.
const maxJSONDepth = 2*MaxDepth + 12

type jsonDecoder struct {
	dec  *json.Decoder
	path []string
}

// decodeJSON decodes exactly one strict JSON value: duplicate members and
// trailing data are errors named by path.
func decodeJSON(data []byte, root string) (*jv, error) {
	if len(data) > MaxInputBytes {
		return nil, &Error{Path: root, Message: fmt.Sprintf("must be at most %d bytes of JSON", MaxInputBytes)}
	}
	d := &jsonDecoder{dec: json.NewDecoder(bytes.NewReader(data)), path: []string{root}}
	d.dec.UseNumber()
	v, err := d.value()
	if err != nil {
		return nil, err
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return nil, &Error{Path: root, Message: "invalid JSON: data after the value"}
	}
	return v, nil
}

func (d *jsonDecoder) errorf(format string, args ...any) *Error {
	return &Error{Path: strings.Join(d.path, ""), Message: fmt.Sprintf(format, args...)}
}

func (d *jsonDecoder) syntax(err error) *Error {
	if errors.Is(err, io.EOF) {
		return d.errorf("invalid JSON: unexpected end of input")
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "json: ")
	return d.errorf("invalid JSON: %s", msg)
}

func (d *jsonDecoder) value() (*jv, error) {
	if len(d.path) > maxJSONDepth {
		return nil, d.errorf("JSON nested more than %d levels deep", maxJSONDepth)
	}
	tok, err := d.dec.Token()
	if err != nil {
		return nil, d.syntax(err)
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := &jv{kind: 'o'}
			seen := map[string]bool{}
			for d.dec.More() {
				kt, err := d.dec.Token()
				if err != nil {
					return nil, d.syntax(err)
				}
				k, ok := kt.(string)
				if !ok {
					return nil, d.errorf("invalid JSON: object key is not a string")
				}
				d.path = append(d.path, "."+k)
				if seen[k] {
					return nil, d.errorf("duplicate key")
				}
				seen[k] = true
				cv, err := d.value()
				if err != nil {
					return nil, err
				}
				d.path = d.path[:len(d.path)-1]
				v.keys = append(v.keys, k)
				v.vals = append(v.vals, cv)
			}
			if _, err := d.dec.Token(); err != nil {
				return nil, d.syntax(err)
			}
			return v, nil
		case '[':
			v := &jv{kind: 'a'}
			for i := 0; d.dec.More(); i++ {
				d.path = append(d.path, "["+strconv.Itoa(i)+"]")
				cv, err := d.value()
				if err != nil {
					return nil, err
				}
				d.path = d.path[:len(d.path)-1]
				v.arr = append(v.arr, cv)
			}
			if _, err := d.dec.Token(); err != nil {
				return nil, d.syntax(err)
			}
			return v, nil
		}
		return nil, d.errorf("invalid JSON: unexpected %q", t)
	case string:
		return &jv{kind: 's', str: t}, nil
	case json.Number:
		return &jv{kind: 'n', num: t}, nil
	case bool:
		return &jv{kind: 'b', b: t}, nil
	case nil:
		return &jv{kind: 'z'}, nil
	}
	return nil, d.errorf("invalid JSON")
}
