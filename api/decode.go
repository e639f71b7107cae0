package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/crier-push/crier"
)

// maxBody bounds request bodies.
const maxRequestBody = 256 << 10

// decode reads one JSON object strictly: unknown fields, trailing data, wrong
// types and oversize bodies are 400s naming the field where there is one.
func decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return crier.Errorf(crier.EUNSUPPORTED, "", "Content-Type must be application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return crier.Invalid("", "body must hold a single JSON object")
	}
	return nil
}

// readBody reads a whole body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, crier.Errorf(crier.ETOOLARGE, "", "body over %d bytes", tooBig.Limit)
	}
	if err != nil {
		return nil, crier.Invalid("", "cannot read the body: %v", err)
	}
	return raw, nil
}

func decodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return crier.Invalid("", "body is empty; a JSON object is required")
	case errors.As(err, &syn):
		return crier.Invalid("", "malformed JSON at byte %d", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return crier.Invalid("", "malformed JSON: unexpected end")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return crier.Invalid("", "body must be a JSON object")
		}
		return crier.Invalid(typ.Field, "must be %s, not %s", jsonType(typ.Type.Kind().String()), typ.Value)
	case errors.As(err, &tooBig):
		return crier.Errorf(crier.ETOOLARGE, "", "body over %d bytes", tooBig.Limit)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return crier.Invalid(field, "unknown field")
	}
	return crier.Invalid("", "malformed JSON: %v", err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	if strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint") || strings.HasPrefix(kind, "float") {
		return "a number"
	}
	return kind
}
