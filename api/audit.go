package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/publish"
	"github.com/crier-push/crier/storage"
)

// maxRequestID bounds a client's X-Request-Id; a longer one, or one of
// other characters than requestIDChars, is replaced by one of ours.
const maxRequestID = 128

type requestIDKey struct{}

// requestID is the request's id, as withRequestID found or made it.
func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// withRequestID gives the request its id: the client's X-Request-Id if it
// is sane (a UUID, a hex or base64 token, a trace id), else a new one. The
// answer carries it back in X-Request-Id, and the audit log records it.
func withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get("X-Request-Id")
	if !saneRequestID(id) {
		id = storage.NewRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
}

func saneRequestID(s string) bool {
	if s == "" || len(s) > maxRequestID {
		return false
	}
	for _, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.:+/=@", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// actor is who the request acts as, for the audit log.
func actor(r *http.Request) storage.Actor {
	return storage.Actor{KeyID: principal(r.Context()).KeyID, RequestID: requestID(r.Context())}
}

// auditTimeout bounds the audit write after an action.
const auditTimeout = 5 * time.Second

// audit records an action the request's key has taken. It is called once
// the action has succeeded (posts, alerts and areas are written by
// packages of their own, in transactions of their own), and the action
// stands whatever happens here: failing the answer would only make the
// client send it again. So a record that cannot be written is logged at
// Error with everything it held, and the request still succeeds. The
// write outlives a client that has gone away.
func (s *Server) audit(r *http.Request, e storage.Event) {
	e.TenantID = principal(r.Context()).TenantID
	by := actor(r)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	if err := s.db.Record(ctx, by, e); err != nil {
		s.log.Error("audit record not written", slog.Any("error", err), slog.Int64("tenant_id", e.TenantID),
			slog.Int64("key_id", by.KeyID), slog.String("request_id", by.RequestID),
			slog.String("action", string(e.Action)), slog.String("object", e.Object), slog.Any("detail", e.Detail))
	}
}

// createdEvent is the record of a post or an alert made (or found again by
// its external id: duplicate).
func createdEvent(action storage.AuditAction, feed, format string, c publish.Created) storage.Event {
	d := map[string]any{"feed": feed, "class": c.Post.Class}
	if format != "" {
		d["format"] = format
	}
	if c.Post.ExternalID != "" {
		d["external_id"] = c.Post.ExternalID
	}
	if !c.New {
		d["duplicate"] = true
	}
	return storage.Event{Action: action, Object: strconv.FormatInt(c.Post.ID, 10), Detail: d}
}

// capEvent is the record of a CAP message: a message of an incident sent,
// or what a Cancel withdrew.
func capEvent(feed string, res publish.CAPResult) storage.Event {
	e := followUpEvent(res.MsgType, 0, res.FollowUp)
	if res.Withdrawn == nil {
		e = createdEvent(map[crier.MsgType]storage.AuditAction{crier.MsgAlert: storage.AuditAlertCreated,
			crier.MsgUpdate: storage.AuditAlertUpdated, crier.MsgCancel: storage.AuditAlertCancelled}[res.MsgType], feed, "cap", res.Created)
		e.Detail["incident_id"] = res.IncidentID
	}
	e.Detail["format"] = "cap"
	if len(res.Unknown) > 0 {
		e.Detail["unknown_references"] = res.Unknown
	}
	return e
}

// followUpEvent is the record of an update or cancel of the incident of
// post id: the message sent, or what a cancel withdrew.
func followUpEvent(kind crier.MsgType, id int64, f publish.FollowUp) storage.Event {
	if f.Withdrawn != nil {
		ids := make([]string, len(f.Withdrawn))
		for i, w := range f.Withdrawn {
			ids[i] = strconv.FormatInt(w, 10)
		}
		return storage.Event{Action: storage.AuditAlertWithdrawn, Object: strings.Join(ids, ","),
			Detail: map[string]any{"incident_id": f.IncidentID, "withdrawn": f.Withdrawn}}
	}
	action := storage.AuditAlertUpdated
	if kind == crier.MsgCancel {
		action = storage.AuditAlertCancelled
	}
	e := createdEvent(action, f.Post.FeedSlug, "json", f.Created)
	e.Detail["incident_id"] = f.IncidentID
	if id != 0 {
		e.Detail["follows"] = id
	}
	return e
}

// Audit pages: 100 entries unless ?limit= says otherwise, at most 1000.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// auditJSON is an audit entry as GET /v1/audit shows it.
type auditJSON struct {
	ID    int64     `json:"id"`
	At    time.Time `json:"at"`
	Actor string    `json:"actor"`
	// KeyID, KeyLabel and Publisher are the key acted with; none for the
	// operator.
	KeyID     *int64              `json:"key_id"`
	KeyLabel  string              `json:"key_label,omitempty"`
	Publisher string              `json:"publisher,omitempty"`
	Action    storage.AuditAction `json:"action"`
	Object    string              `json:"object"`
	RequestID string              `json:"request_id"`
	Detail    any                 `json:"detail"`
}

// getAudit is GET /v1/audit: the tenant's audit log, newest first
// (municipality only). ?since= (RFC 3339), ?action=, ?limit= (1-1000,
// default 100); ?before= the next page's cursor, given as next_before and
// in next.
func (s *Server) getAudit(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	if err := p.MayReadAudit(); err != nil {
		return err
	}
	aq, err := auditQuery(r.URL.Query())
	if err != nil {
		return err
	}
	aq.TenantID = p.TenantID
	entries, err := s.db.AuditLog(r.Context(), aq)
	if err != nil {
		return err
	}
	out := map[string]any{"entries": auditEntriesJSON(entries)}
	if len(entries) == aq.Limit {
		last := entries[len(entries)-1].ID
		q := r.URL.Query()
		q.Set("before", strconv.FormatInt(last, 10))
		out["next_before"] = last
		out["next"] = "/v1/audit?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// auditQuery reads GET /v1/audit's query; anything it does not know is
// refused, so that a misspelt filter does not silently show everything.
func auditQuery(q url.Values) (storage.AuditQuery, error) {
	aq := storage.AuditQuery{Limit: defaultAuditLimit}
	for name, vs := range q {
		v := vs[0]
		switch name {
		case "since":
			// An unescaped + of a time zone offset arrives as a space.
			t, err := time.Parse(time.RFC3339Nano, strings.ReplaceAll(v, " ", "+"))
			if err != nil {
				return aq, crier.Invalid("since", "must be an RFC 3339 time such as 2025-03-01T08:00:00Z")
			}
			aq.Since = t
		case "action":
			aq.Action = storage.AuditAction(v)
			if !slices.Contains(storage.AuditActions, aq.Action) {
				return aq, crier.Invalid("action", "must be one of %v", storage.AuditActions)
			}
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxAuditLimit {
				return aq, crier.Invalid("limit", "must be a number from 1 to %d", maxAuditLimit)
			}
			aq.Limit = n
		case "before":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return aq, crier.Invalid("before", "must be an entry id (next_before of the page before)")
			}
			aq.Before = n
		default:
			return aq, crier.Invalid(name, "unknown parameter: want since, action, limit or before")
		}
	}
	return aq, nil
}

func auditEntriesJSON(entries []storage.AuditEntry) []auditJSON {
	out := make([]auditJSON, len(entries))
	for i, e := range entries {
		out[i] = auditJSON{ID: e.ID, At: e.At, Actor: e.Actor, KeyID: e.KeyID, KeyLabel: e.KeyLabel,
			Publisher: e.PublisherSlug, Action: e.Action, Object: e.Object, RequestID: e.RequestID, Detail: e.Detail}
	}
	return out
}
