// Package apiclient is the one client of crier's HTTP API that crier's own
// programs and tests use: the demo, the bench, the crash tests and the API
// and server tests. It sends JSON with a bearer key and reads JSON back.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Client speaks to one crier API with one key.
type Client struct {
	// Base is the API's root URL, e.g. http://127.0.0.1:8080.
	Base string
	// Key is sent as Authorization: Bearer; none when empty.
	Key string
	// HTTP is the client used; http.DefaultClient when nil.
	HTTP *http.Client
	// Secrets, if set, keeps the device secrets answered and sends them.
	Secrets *DeviceSecrets
}

// PostStatus is the answer to GET /v1/posts/{id}, as far as crier's own
// tests read it.
type PostStatus struct {
	ID int64 `json:"id"`
	// State: accepted, dispatching, sending, done or cancelled.
	State        string         `json:"state"`
	Audience     *int           `json:"audience"`
	Counts       map[string]int `json:"counts"`
	Pending      int            `json:"pending"`
	PublishAt    time.Time      `json:"publish_at"`
	SnapshotAt   *time.Time     `json:"snapshot_at"`
	DispatchedAt *time.Time     `json:"dispatched_at"`
	FirstSentAt  *time.Time     `json:"first_sent_at"`
	LastSentAt   *time.Time     `json:"last_sent_at"`
	SendRate     float64        `json:"send_rate"`
	// Paused lists the providers refusing the tenant's credentials while
	// deliveries wait.
	Paused []struct {
		Provider string `json:"provider"`
		Reason   string `json:"reason"`
	} `json:"paused"`
}

// With is the client with another key.
func (c Client) With(key string) Client {
	c.Key = key
	return c
}

// Do sends body as JSON (a string or []byte as it is, anything else
// marshalled; nothing when nil) and decodes a non-empty answer into out,
// whatever its status, when out is not nil. It returns the status.
func (c Client) Do(ctx context.Context, method, path string, body, out any) (int, error) {
	status, raw, err := c.json(ctx, method, path, body)
	if err != nil {
		return status, err
	}
	return status, decode(method, path, raw, out)
}

// Call is Do for callers that want a 2xx: any other status is an error
// quoting the answer.
func (c Client) Call(ctx context.Context, method, path string, body, out any) error {
	status, raw, err := c.json(ctx, method, path, body)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return fmt.Errorf("%s %s: %d %s", method, path, status, raw)
	}
	return decode(method, path, raw, out)
}

// json sends body as JSON and returns the status and the raw answer.
func (c Client) json(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return 0, nil, fmt.Errorf("%s %s: encode: %w", method, path, err)
		}
		rd = bytes.NewReader(buf)
	}
	h := http.Header{}
	if rd != nil {
		h.Set("Content-Type", "application/json")
	}
	status, _, raw, err := c.send(ctx, method, path, h, rd)
	return status, raw, err
}

// decode reads a non-empty answer into out, when out is not nil.
func decode(method, path string, raw []byte, out any) error {
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decode %q: %w", method, path, raw, err)
	}
	return nil
}

// Send makes a request with a raw body and the headers as given (with the
// key unless they hold an Authorization of their own) and returns the
// status, the answer's headers and body.
func (c Client) Send(ctx context.Context, method, path string, header http.Header, body string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != "" {
		rd = bytes.NewBufferString(body)
	}
	return c.send(ctx, method, path, header, rd)
}

func (c Client) send(ctx context.Context, method, path string, header http.Header, body io.Reader) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, body)
	if err != nil {
		return 0, nil, nil, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if c.Key != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+c.Key)
	}
	c.Secrets.before(path, req.Header)
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("%s %s: read the answer: %w", method, path, err)
	}
	c.Secrets.after(method, path, resp.StatusCode, raw)
	return resp.StatusCode, resp.Header, raw, nil
}
