package api

import (
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/publish"
	"github.com/crier-push/crier/storage"
)

// createAlert is POST /v1/alerts: CAP 1.2 (application/cap+xml,
// application/xml or text/xml, the feed as ?feed=slug) or JSON.
func (s *Server) createAlert(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	if err := p.MaySendAlerts(); err != nil {
		return err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/cap+xml", "application/xml", "text/xml":
		raw, err := readBody(w, r, cap.MaxSize)
		if err != nil {
			return err
		}
		res, err := s.pub.CreateCAPAlert(r.Context(), p, r.URL.Query().Get("feed"), raw)
		if err != nil {
			return err
		}
		s.audit(r, capEvent(r.URL.Query().Get("feed"), res))
		writeCAPResult(w, res)
		return nil
	case "", "application/json":
		var b publish.AlertRequest
		if err := decode(w, r, &b); err != nil {
			return err
		}
		c, err := s.pub.CreateAlert(r.Context(), p, b)
		if err != nil {
			return err
		}
		s.audit(r, createdEvent(storage.AuditAlertCreated, b.Feed, "json", c))
		writeJSON(w, createdStatus(c.New), alertCreated(publish.FollowUp{Created: c, IncidentID: c.Post.IncidentID}))
		return nil
	}
	return crier.Errorf(crier.EUNSUPPORTED, "", "Content-Type must be application/json or, for CAP 1.2, application/cap+xml")
}

// alertCreated is the answer to a message of an incident: the post made,
// or for a cancel of an incident that reached no one, what it withdrew.
func alertCreated(f publish.FollowUp) map[string]any {
	if f.Withdrawn != nil {
		out := map[string]any{"withdrawn": f.Withdrawn, "sent": false}
		if f.IncidentID != 0 {
			out["incident_id"] = f.IncidentID
		}
		return out
	}
	out := postCreated(f.Created)
	out["incident_id"] = f.IncidentID
	out["msg_type"] = f.Post.MsgType
	out["alert_url"] = "/v1/alerts/" + strconv.FormatInt(f.Post.ID, 10)
	if f.Post.Exercise {
		out["exercise"] = true
	}
	if f.Post.LapsesAt != nil {
		out["lapses_at"] = f.Post.LapsesAt
	}
	return out
}

func writeCAPResult(w http.ResponseWriter, res publish.CAPResult) {
	out := alertCreated(res.FollowUp)
	status := http.StatusOK
	if res.Withdrawn == nil {
		status = createdStatus(res.New)
	}
	if len(res.Unknown) > 0 {
		out["unknown_references"] = res.Unknown
	}
	if len(res.Warnings) > 0 {
		out["warnings"] = res.Warnings
	}
	writeJSON(w, status, out)
}

// followUpAlert is POST /v1/alerts/{id}/update and /cancel.
func (s *Server) followUpAlert(kind crier.MsgType) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := postID(r)
		if err != nil {
			return err
		}
		var b publish.FollowUpRequest
		if err := decode(w, r, &b); err != nil {
			return err
		}
		p := principal(r.Context())
		var f publish.FollowUp
		if kind == crier.MsgUpdate {
			f, err = s.pub.UpdateAlert(r.Context(), p, id, b)
		} else {
			f, err = s.pub.CancelAlert(r.Context(), p, id, b)
		}
		if err != nil {
			return err
		}
		s.audit(r, followUpEvent(kind, id, f))
		status := http.StatusOK
		if f.Withdrawn == nil {
			status = createdStatus(f.New)
		}
		writeJSON(w, status, alertCreated(f))
		return nil
	}
}

// approveAlert is POST /v1/alerts/{id}/approve.
func (s *Server) approveAlert(w http.ResponseWriter, r *http.Request) error {
	id, err := postID(r)
	if err != nil {
		return err
	}
	post, err := s.pub.ApproveAlert(r.Context(), principal(r.Context()), id)
	if err != nil {
		return err
	}
	s.audit(r, storage.Event{Action: storage.AuditAlertApproved, Object: strconv.FormatInt(id, 10),
		Detail: map[string]any{"created_by_key": post.CreatedByKey, "incident_id": post.IncidentID}})
	writeJSON(w, http.StatusOK, map[string]any{"id": post.ID, "state": post.State, "incident_id": post.IncidentID,
		"approved_at": post.ApprovedAt})
	return nil
}

// messageJSON is one message of an incident as GET /v1/alerts/{id} shows
// it: what it said, where it is, and who it reached.
type messageJSON struct {
	ID           int64                               `json:"id"`
	MsgType      crier.MsgType                       `json:"msg_type"`
	State        crier.PostState                     `json:"state"`
	Title        string                              `json:"title"`
	Body         string                              `json:"body"`
	Language     string                              `json:"language,omitempty"`
	Translations crier.Translations                  `json:"translations,omitempty"`
	ExternalID   string                              `json:"external_id,omitempty"`
	CreatedAt    time.Time                           `json:"created_at"`
	SentAt       *time.Time                          `json:"origin_sent_at,omitempty"`
	LapsesAt     *time.Time                          `json:"lapses_at,omitempty"`
	ApprovedAt   *time.Time                          `json:"approved_at,omitempty"`
	Audience     *int                                `json:"audience"`
	Reached      int                                 `json:"reached"`
	Counts       map[crier.DeliveryState]crier.Count `json:"counts"`
	FirstSentAt  *time.Time                          `json:"first_sent_at"`
	LastSentAt   *time.Time                          `json:"last_sent_at"`
	StatusURL    string                              `json:"status_url"`
}

// getAlert is GET /v1/alerts/{id}: the incident of any of its messages,
// as JSON, or with Accept: application/cap+xml the message as CAP 1.2.
func (s *Server) getAlert(w http.ResponseWriter, r *http.Request) error {
	id, err := postID(r)
	if err != nil {
		return err
	}
	p := principal(r.Context())
	if wantsCAP(r) {
		return s.writeAlertCAP(w, r, id)
	}
	inc, err := s.pub.IncidentStatus(r.Context(), p, id)
	if err != nil {
		return err
	}
	msgs := make([]messageJSON, 0, len(inc.Messages))
	for _, st := range inc.Messages {
		m := st.Post
		j := messageJSON{ID: m.ID, MsgType: m.MsgType, State: st.State, Title: m.Title, Body: m.Body, Language: m.Language,
			Translations: m.Translations, ExternalID: m.ExternalID, CreatedAt: m.CreatedAt, SentAt: m.OriginSentAt,
			LapsesAt: m.LapsesAt, ApprovedAt: m.ApprovedAt, Audience: m.Audience, Reached: st.Progress.Counts[crier.DeliverySent],
			Counts: map[crier.DeliveryState]crier.Count{}, FirstSentAt: st.Progress.FirstSentAt, LastSentAt: st.Progress.LastSentAt,
			StatusURL: "/v1/posts/" + strconv.FormatInt(m.ID, 10)}
		if m.State != crier.PostAwaitingApproval {
			j.LapsesAt = nil
		}
		for _, state := range crier.DeliveryStates {
			j.Counts[state] = p.Count(st.Progress.Counts[state])
		}
		msgs = append(msgs, j)
	}
	first := inc.Messages[0].Post
	writeJSON(w, http.StatusOK, map[string]any{"incident_id": inc.ID, "feed": first.FeedSlug, "exercise": inc.Exercise,
		"collapse_key": first.CollapseKey, "messages": msgs})
	return nil
}

// wantsCAP reports whether the request asks for CAP 1.2 rather than JSON.
func wantsCAP(r *http.Request) bool {
	for _, part := range splitAccept(r.Header.Get("Accept")) {
		switch part {
		case "application/cap+xml", "application/xml", "text/xml":
			return true
		case "application/json":
			return false
		}
	}
	return false
}

// testDevices is GET /v1/test-devices.
func (s *Server) testDevices(w http.ResponseWriter, r *http.Request) error {
	ids, err := s.pub.TestDevices(r.Context(), principal(r.Context()))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"installation_ids": ids})
	return nil
}

// setTestDevices is PUT /v1/test-devices (mark) and DELETE /v1/test-devices
// (unmark), with {"installation_ids": [...]}.
func (s *Server) setTestDevices(test bool) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var b struct {
			InstallationIDs []string `json:"installation_ids"`
		}
		if err := decode(w, r, &b); err != nil {
			return err
		}
		unknown, err := s.pub.SetTestDevices(r.Context(), principal(r.Context()), b.InstallationIDs, test)
		if err != nil {
			return err
		}
		s.audit(r, storage.Event{Action: storage.AuditTestDevices, Detail: map[string]any{"test": test,
			"installation_ids": b.InstallationIDs, "unknown": unknown}})
		writeJSON(w, http.StatusOK, map[string]any{"test": test, "changed": len(b.InstallationIDs) - len(unknown), "unknown": unknown})
		return nil
	}
}
