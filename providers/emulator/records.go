package emulator

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Record is one push request the emulator answered, accepted or not.
type Record struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Provider string    `json:"provider"` // "fcm" or "apns"
	// Token is the device token ("" for FCM topic and condition sends).
	Token string `json:"token,omitempty"`
	// Project is the FCM project of the URL.
	Project string `json:"project,omitempty"`
	// Topic is the APNs apns-topic, or the FCM topic or condition.
	Topic string `json:"topic,omitempty"`
	// Headers are the request headers that matter: for APNs apns-topic,
	// apns-push-type, apns-priority, apns-expiration, apns-collapse-id and
	// apns-id.
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the raw request body.
	Body string `json:"body"`
	// ValidateOnly is FCM's validate_only: checked, not delivered.
	ValidateOnly bool `json:"validate_only,omitempty"`
	// Status is the HTTP status answered.
	Status int `json:"status"`
	// Reason is the FCM errorCode (or status, when FCM gives no errorCode)
	// or the APNs reason; empty on success.
	Reason string `json:"reason,omitempty"`
	// ID is the FCM message name or the APNs apns-id answered.
	ID string `json:"id,omitempty"`
	// Throttled: the 429 was a throttle burst's (see Emulator.Throttle),
	// not the token's behaviour.
	Throttled bool `json:"throttled,omitempty"`
}

// Accepted reports whether the push was accepted for delivery.
func (r Record) Accepted() bool { return r.Status == http.StatusOK && !r.ValidateOnly }

// Summary counts the requests answered, by provider.
type Summary struct {
	Total int             `json:"total"`
	FCM   ProviderSummary `json:"fcm"`
	APNs  ProviderSummary `json:"apns"`
}

// ProviderSummary counts one provider's requests.
type ProviderSummary struct {
	// Accepted pushes were answered 200 and would be delivered.
	Accepted int `json:"accepted"`
	// Validated were FCM validate_only requests answered 200.
	Validated int `json:"validated"`
	// Rejected were answered with an error.
	Rejected int `json:"rejected"`
	// ByReason counts rejections by FCM errorCode or APNs reason.
	ByReason map[string]int `json:"by_reason"`
	// Throttled counts the rejections that were a throttle burst's 429s
	// (also counted in Rejected and ByReason).
	Throttled int `json:"throttled"`
}

// Calls is how many requests the provider answered, whatever the answer.
func (p ProviderSummary) Calls() int { return p.Accepted + p.Validated + p.Rejected }

func newSummary() Summary {
	return Summary{
		FCM:  ProviderSummary{ByReason: map[string]int{}},
		APNs: ProviderSummary{ByReason: map[string]int{}},
	}
}

// Summarize counts records as Summary counts everything answered: a test
// summarizes the records of its own tokens, e.g. to count provider calls.
func Summarize(recs []Record) Summary {
	s := newSummary()
	for _, r := range recs {
		s.add(r)
	}
	return s
}

func (s *Summary) add(rec Record) {
	s.Total++
	ps := &s.FCM
	if rec.Provider == "apns" {
		ps = &s.APNs
	}
	switch {
	case rec.Status != http.StatusOK:
		ps.Rejected++
		ps.ByReason[rec.Reason]++
		if rec.Throttled {
			ps.Throttled++
		}
	case rec.ValidateOnly:
		ps.Validated++
	default:
		ps.Accepted++
	}
}

type recorder struct {
	mu       sync.Mutex
	max      int
	seq      int64
	records  []Record
	summary  Summary
	onRecord func(Record)
	// apps, once PostReceipts is called, post the receipts of accepted
	// pushes (receipts.go).
	apps atomic.Pointer[apps]
}

func newRecorder(max int, onRecord func(Record)) *recorder {
	r := &recorder{max: max, onRecord: onRecord}
	r.resetLocked()
	return r
}

func (r *recorder) resetLocked() {
	r.records = nil
	r.summary = newSummary()
}

func (r *recorder) add(rec Record) {
	r.mu.Lock()
	r.seq++
	rec.Seq = r.seq
	if r.max > 0 {
		r.records = append(r.records, rec)
		// Trim in batches, so that keeping the last max records costs
		// O(1) per push.
		if len(r.records) >= 2*r.max {
			r.records = append([]Record(nil), r.records[len(r.records)-r.max:]...)
		}
	}
	r.summary.add(rec)
	r.mu.Unlock()
	// Outside the lock: a slow callback must not serialise the requests.
	if r.onRecord != nil {
		r.onRecord(rec)
	}
	if a := r.apps.Load(); a != nil {
		a.offer(rec)
	}
}

// Records returns what the emulator answered, oldest first (at most
// Config.MaxRecords of them).
func (e *Emulator) Records() []Record {
	e.records.mu.Lock()
	defer e.records.mu.Unlock()
	recs := e.records.records
	if len(recs) > e.records.max {
		recs = recs[len(recs)-e.records.max:]
	}
	return append([]Record(nil), recs...)
}

// RecordsFor returns the records of one device token, oldest first.
func (e *Emulator) RecordsFor(token string) []Record {
	var out []Record
	for _, r := range e.Records() {
		if r.Token == token {
			out = append(out, r)
		}
	}
	return out
}

// Summary counts everything answered since the start or the last Reset.
func (e *Emulator) Summary() Summary {
	e.records.mu.Lock()
	defer e.records.mu.Unlock()
	s := e.records.summary
	s.FCM.ByReason = copyCounts(s.FCM.ByReason)
	s.APNs.ByReason = copyCounts(s.APNs.ByReason)
	return s
}

func copyCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Reset forgets the records and counts (flaky tokens' too) and ends a
// throttle burst; it keeps the credentials.
func (e *Emulator) Reset() {
	e.Throttle(0, 0)
	e.flaky.reset()
	e.records.mu.Lock()
	defer e.records.mu.Unlock()
	e.records.resetLocked()
}

func (e *Emulator) serveSummary(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, e.Summary())
}

func (e *Emulator) serveRecords(w http.ResponseWriter, r *http.Request) {
	recs := e.Records()
	if tok := r.URL.Query().Get("token"); tok != "" {
		recs = e.RecordsFor(tok)
	}
	if recs == nil {
		recs = []Record{}
	}
	writeJSON(w, http.StatusOK, recs)
}

func (e *Emulator) serveReset(w http.ResponseWriter, r *http.Request) {
	e.Reset()
	w.WriteHeader(http.StatusNoContent)
}

func (e *Emulator) serveCACert(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.Write(e.certPEM)
}

// refused records a push refused with rec's status and reason, logs it
// with msg, and sets the answer's Retry-After (none when retryAfter is 0);
// the caller writes the body.
func (e *Emulator) refused(w http.ResponseWriter, rec Record, msg string, retryAfter int) {
	e.records.add(rec)
	e.log.Debug(msg, slog.String("token", rec.Token), slog.Int("status", rec.Status), slog.String("reason", rec.Reason))
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
