package api

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/publish"
	"github.com/crier-push/crier/storage"
)

func (s *Server) createPost(w http.ResponseWriter, r *http.Request) error {
	var b publish.PostRequest
	if err := decode(w, r, &b); err != nil {
		return err
	}
	c, err := s.pub.CreatePost(r.Context(), principal(r.Context()), b)
	if err != nil {
		return err
	}
	s.audit(r, createdEvent(storage.AuditPostCreated, b.Feed, "", c))
	writeJSON(w, createdStatus(c.New), postCreated(c))
	return nil
}

// createdStatus is 202 for a new post and 200 for one the external id
// found.
func createdStatus(created bool) int {
	if created {
		return http.StatusAccepted
	}
	return http.StatusOK
}

// postCreated is the answer to a post's creation.
func postCreated(c publish.Created) map[string]any {
	return map[string]any{"id": c.Post.ID, "state": c.Post.State, "duplicate": !c.New,
		"status_url": "/v1/posts/" + strconv.FormatInt(c.Post.ID, 10)}
}

// postJSON is a post as GET /v1/posts/{id} shows it.
type postJSON struct {
	ID          int64             `json:"id"`
	Feed        string            `json:"feed"`
	Class       crier.Class       `json:"class"`
	Title       string            `json:"title"`
	Body        string            `json:"body"`
	URL         string            `json:"url,omitempty"`
	Data        map[string]string `json:"data,omitempty"`
	Tags        []string          `json:"tags"`
	ExternalID  string            `json:"external_id,omitempty"`
	CollapseKey string            `json:"collapse_key,omitempty"`
	Target      json.RawMessage   `json:"target,omitempty"`
	Segment     json.RawMessage   `json:"segment,omitempty"`
	PublishAt   time.Time         `json:"publish_at"`
	ExpiresAt   *time.Time        `json:"expires_at,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	// Language is the language of title and body, "" for the tenant's;
	// Translations are the texts in other languages.
	Language     string             `json:"language,omitempty"`
	Translations crier.Translations `json:"translations,omitempty"`
	// State: accepted, dispatching, sending, done or cancelled.
	State crier.PostState `json:"state"`
	// The counts are as the principal may see them: rounded for an
	// organisation (crier.Principal.Count), which sees no send rate either
	// (with the first and last send's times it would give the exact count).
	Audience     *crier.Count                        `json:"audience"`
	Counts       map[crier.DeliveryState]crier.Count `json:"counts"`
	Pending      crier.Count                         `json:"pending"`
	SnapshotAt   *time.Time                          `json:"snapshot_at"`
	DispatchedAt *time.Time                          `json:"dispatched_at"`
	FirstSentAt  *time.Time                          `json:"first_sent_at"`
	LastSentAt   *time.Time                          `json:"last_sent_at"`
	SendRate     *float64                            `json:"send_rate,omitempty"`
	Paused       []pausedJSON                        `json:"paused,omitempty"`
	// Reach is what the apps' receipts say (receipts.go).
	Reach *reachJSON `json:"reach"`
}

type pausedJSON struct {
	Provider string    `json:"provider"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
}

// postID reads the {id} of the path.
func postID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, crier.Invalid("id", "must be a post id")
	}
	return id, nil
}

func (s *Server) getPost(w http.ResponseWriter, r *http.Request) error {
	id, err := postID(r)
	if err != nil {
		return err
	}
	st, err := s.pub.PostStatus(r.Context(), principal(r.Context()), id)
	if err != nil {
		return err
	}
	post, pr, p := st.Post, st.Progress, principal(r.Context())
	out := postJSON{ID: post.ID, Feed: post.FeedSlug, Class: post.Class, Title: post.Title, Body: post.Body,
		Language: post.Language, Translations: post.Translations,
		URL: post.URL, Data: post.Data, Tags: nonNil(post.Tags), ExternalID: post.ExternalID,
		CollapseKey: post.CollapseKey, Target: post.Target, Segment: post.Segment, PublishAt: post.PublishAt,
		ExpiresAt: post.ExpiresAt, CreatedAt: post.CreatedAt, State: st.State,
		Counts: map[crier.DeliveryState]crier.Count{}, Pending: p.Count(pr.Pending()), FirstSentAt: pr.FirstSentAt,
		LastSentAt: pr.LastSentAt, SnapshotAt: post.SnapshotAt, DispatchedAt: post.DispatchedAt}
	if post.Audience != nil {
		a := p.Count(*post.Audience)
		out.Audience = &a
	}
	if p.SeesExactCounts() {
		out.SendRate = &st.SendRate
	}
	for _, state := range crier.DeliveryStates {
		out.Counts[state] = p.Count(pr.Counts[state])
	}
	for _, e := range st.Paused {
		out.Paused = append(out.Paused, pausedJSON{Provider: e.Provider, Reason: e.Reason, Since: e.Since})
	}
	if out.Reach, err = s.reach(r, p, post.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// cancelPost is DELETE /v1/posts/{id}; the answer says how many deliveries
// were cancelled.
func (s *Server) cancelPost(w http.ResponseWriter, r *http.Request) error {
	id, err := postID(r)
	if err != nil {
		return err
	}
	n, err := s.pub.CancelPost(r.Context(), principal(r.Context()), id)
	if err != nil {
		return err
	}
	s.audit(r, storage.Event{Action: storage.AuditPostCancelled, Object: strconv.FormatInt(id, 10), Detail: map[string]any{"cancelled": n}})
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "state": crier.PostCancelled, "cancelled": principal(r.Context()).Count(n)})
	return nil
}

// preview counts who a post would reach now, in total and per platform.
func (s *Server) preview(w http.ResponseWriter, r *http.Request) error {
	var b publish.PreviewRequest
	if err := decode(w, r, &b); err != nil {
		return err
	}
	c, err := s.pub.Preview(r.Context(), principal(r.Context()), b)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}
