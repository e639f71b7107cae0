package api

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/storage"
)

// ReceiptSink takes the apps' receipts to be written soon, in batches
// (receipts.Writer). It never waits: when it cannot take more it answers
// crier.ETOOMANY or EUNAVAILABLE with when to come back.
type ReceiptSink interface {
	Add(rs []storage.Receipt) error
}

// Bounds on receipts.
const (
	// maxReceipts is the most receipts one request carries: an app that
	// was offline sends what it gathered, a few at a time.
	maxReceipts = 50
	// maxReceiptBody holds 50 receipts with room to spare.
	maxReceiptBody = 16 << 10
	// DefaultReceiptRequests is how many receipt requests the API serves at
	// once (Config.ReceiptRequests); one past it is answered 429 at once.
	// Each holds a connection of the API's pool for two short reads (the
	// app key, the device): a flood of receipts, every phone at once after
	// an alert, leaves the rest of the pool to alerts and posts.
	DefaultReceiptRequests = 4
	// receiptRetryAfter is what a receipt refused for the limit is told.
	receiptRetryAfter = 2 * time.Second
)

// receiptJSON is one receipt as the app sends it. Times are RFC 3339; a
// missing received_at is the time the receipt arrives.
type receiptJSON struct {
	PostID      *int64  `json:"post_id"`
	ReceivedAt  *string `json:"received_at"`
	DisplayedAt *string `json:"displayed_at"`
}

// receiptsBody is POST /v1/devices/{installation_id}/receipts: one receipt,
// or {"receipts": [...]}.
type receiptsBody struct {
	// Not an embedded receiptJSON: encoding/json would name its fields
	// receiptJSON.post_id in errors.
	PostID      *int64        `json:"post_id"`
	ReceivedAt  *string       `json:"received_at"`
	DisplayedAt *string       `json:"displayed_at"`
	Receipts    []receiptJSON `json:"receipts"`
}

// receipt is a receipt read from the body, its times clamped to now.
type receipt struct {
	PostID                  int64
	ReceivedAt, DisplayedAt time.Time
}

// parseReceipts reads a receipts body strictly: errors name the field
// (receipts[2].received_at). Times after now (a phone's clock ahead) are
// now; storage clamps those before the post.
func parseReceipts(raw []byte, now time.Time) ([]receipt, error) {
	var body receiptsBody
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return nil, decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		return nil, crier.Invalid("", "body must hold a single JSON object")
	}
	single := body.PostID != nil || body.ReceivedAt != nil || body.DisplayedAt != nil
	list, prefix := body.Receipts, func(i int) string { return fmt.Sprintf("receipts[%d].", i) }
	switch {
	case single && body.Receipts != nil:
		return nil, crier.Invalid("receipts", "send one receipt or a list of receipts, not both")
	case single:
		list = []receiptJSON{{PostID: body.PostID, ReceivedAt: body.ReceivedAt, DisplayedAt: body.DisplayedAt}}
		prefix = func(int) string { return "" }
	case body.Receipts != nil && len(list) == 0:
		return nil, crier.Invalid("receipts", "must hold 1 to %d receipts", maxReceipts)
	case len(list) == 0:
		return nil, crier.Invalid("post_id", `is required (or "receipts": [...], 1 to %d)`, maxReceipts)
	case len(list) > maxReceipts:
		return nil, crier.Invalid("receipts", "at most %d receipts a request", maxReceipts)
	}
	out := make([]receipt, 0, len(list))
	for i, j := range list {
		r, err := j.parse(prefix(i), now)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (j receiptJSON) parse(prefix string, now time.Time) (receipt, error) {
	if j.PostID == nil {
		return receipt{}, crier.Invalid(prefix+"post_id", "is required")
	}
	if *j.PostID <= 0 {
		return receipt{}, crier.Invalid(prefix+"post_id", "must be a post id")
	}
	r := receipt{PostID: *j.PostID, ReceivedAt: now}
	for _, f := range []struct {
		name string
		in   *string
		out  *time.Time
	}{{"received_at", j.ReceivedAt, &r.ReceivedAt}, {"displayed_at", j.DisplayedAt, &r.DisplayedAt}} {
		if f.in == nil {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, *f.in)
		if err != nil || t.Year() < 2000 {
			return receipt{}, crier.Invalid(prefix+f.name, "must be an RFC 3339 time such as 2025-03-01T12:00:00Z, not %q", *f.in)
		}
		*f.out = t
		if t.After(now) {
			*f.out = now
		}
	}
	return r, nil
}

// receiptsHandler is POST /v1/devices/{installation_id}/receipts: the app
// key and the installation's device secret; 202 with how many receipts
// were taken. At most Config.ReceiptRequests are served at once, the
// others answered 429 with Retry-After without waiting.
func (s *Server) receiptsHandler() http.Handler {
	turns := make(chan struct{}, cmp.Or(s.cfg.ReceiptRequests, DefaultReceiptRequests))
	h := s.auth(crier.KeyApp, s.postReceipts)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case turns <- struct{}{}:
			defer func() { <-turns }()
		default:
			s.writeError(w, &crier.Error{Code: crier.ETOOMANY, RetryAfter: receiptRetryAfter,
				Message: "too many receipts at once: try again later"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) postReceipts(w http.ResponseWriter, r *http.Request) error {
	inst := r.PathValue("installation_id")
	if !installationRE.MatchString(inst) {
		return crier.Invalid("installation_id", "must be 1 to 128 characters of A-Z a-z 0-9 . _ : -")
	}
	if r.Header.Get(DeviceSecretHeader) == "" {
		return crier.Errorf(crier.EUNAUTHORIZED, DeviceSecretHeader, "receipts need the installation's device secret")
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return crier.Errorf(crier.EUNSUPPORTED, "", "Content-Type must be application/json")
	}
	raw, err := readBody(w, r, maxReceiptBody)
	if err != nil {
		return err
	}
	parsed, err := parseReceipts(raw, time.Now())
	if err != nil {
		return err
	}
	d, err := s.db.ReceiptDevice(r.Context(), principal(r.Context()).TenantID, inst)
	if err != nil {
		return err
	}
	if err := ownSecret(r, d); err != nil {
		return err
	}
	rs := make([]storage.Receipt, len(parsed))
	for i, p := range parsed {
		rs[i] = storage.Receipt{PostID: p.PostID, DeviceID: d.ID, ReceivedAt: p.ReceivedAt, DisplayedAt: p.DisplayedAt}
	}
	if s.cfg.Receipts == nil {
		// An API made without a writer (tests, tools) writes each
		// request's receipts itself.
		_, err = s.db.WriteReceipts(r.Context(), rs)
	} else {
		err = s.cfg.Receipts.Add(rs)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]int{"accepted": len(rs)})
	return nil
}

// reachJSON is a post's reach as GET /v1/posts/{id} shows it: counts as
// the principal may see them; latencies from the post's origin (the
// alert's sent time, else its acceptance) to the receipts, in
// milliseconds, only for a principal who sees exact counts (from a few
// receipts' latencies one would tell how many there are) and once there is
// a receipt.
type reachJSON struct {
	Received  crier.Count  `json:"received"`
	Displayed crier.Count  `json:"displayed"`
	LatencyMS *latencyJSON `json:"latency_ms,omitempty"`
}

type latencyJSON struct {
	First  int64 `json:"first"`
	Median int64 `json:"median"`
	P95    int64 `json:"p95"`
}

// reach reads the post's reach for p.
func (s *Server) reach(r *http.Request, p crier.Principal, postID int64) (*reachJSON, error) {
	rc, err := s.db.PostReach(r.Context(), postID)
	if err != nil {
		return nil, err
	}
	out := &reachJSON{Received: p.Count(rc.Received), Displayed: p.Count(rc.Displayed)}
	if p.SeesExactCounts() && rc.First != nil {
		out.LatencyMS = &latencyJSON{First: rc.First.Milliseconds(), Median: rc.Median.Milliseconds(),
			P95: rc.P95.Milliseconds()}
	}
	return out, nil
}
