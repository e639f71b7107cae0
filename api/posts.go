package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
)

// Bounds on a post. The payload limit itself (4096 bytes at FCM and APNs) is
// checked on the payloads we would build (payload.go).
const (
	maxTitle      = 200
	maxBody       = 2000
	maxURL        = 2048
	maxTags       = 20
	maxDataKeys   = 32
	maxExternalID = 200
	maxCollapse   = 64
	maxAhead      = 366 * 24 * time.Hour
)

// postBody is POST /v1/posts.
type postBody struct {
	Feed       string            `json:"feed"`
	Title      string            `json:"title"`
	Body       string            `json:"body"`
	URL        string            `json:"url"`
	Data       map[string]string `json:"data"`
	Tags       []string          `json:"tags"`
	Class      string            `json:"class"`
	ExternalID string            `json:"external_id"`
	// Target is where the post is for: area slugs, a GeoJSON Polygon or
	// MultiPolygon, or {"lat", "lon", "radius_m"}.
	Target json.RawMessage `json:"target"`
	// Segment is an explicit audience expression (DESIGN.md's grammar).
	Segment     json.RawMessage `json:"segment"`
	CollapseKey string          `json:"collapse_key"`
	// Times are RFC 3339 strings, parsed in validatePost so that a bad one
	// is a 400 naming its field.
	PublishAt *string `json:"publish_at"`
	ExpiresAt *string `json:"expires_at"`
}

func (s *Server) createPost(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	var b postBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	feed, err := s.postFeed(r.Context(), p, b.Feed)
	if err != nil {
		return err
	}
	post, err := s.validatePost(b, p.Publisher)
	if err != nil {
		return err
	}
	if post.Target, post.Segment, err = s.targeting(r.Context(), p, b.Target, b.Segment); err != nil {
		return err
	}
	post.TenantID, post.FeedID, post.PublisherID = p.TenantID, feed.ID, p.Publisher.ID
	saved, created, err := s.savePost(r.Context(), post)
	if err != nil {
		return err
	}
	writeJSON(w, createdStatus(created), postCreated(saved, created))
	return nil
}

// savePost stores a post and enqueues its dispatch. A replayed request
// re-enqueues a post that is still waiting: if the first enqueue was lost,
// the retry mends it; otherwise the task id makes it a no-op.
func (s *Server) savePost(ctx context.Context, post storage.Post) (storage.Post, bool, error) {
	saved, created, err := s.db.CreatePost(ctx, post)
	if err != nil {
		return saved, false, err
	}
	if saved.State == storage.PostAccepted {
		task, err := tasks.NewDispatch(saved.ID, saved.Class, saved.PublishAt)
		if err != nil {
			return saved, false, err
		}
		if _, err := s.enq.EnqueueContext(ctx, task); err != nil && !isTaskConflict(err) {
			return saved, false, fmt.Errorf("enqueue dispatch of post %d: %w: %w", saved.ID, errUnavailable, err)
		}
	}
	return saved, created, nil
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
func postCreated(p storage.Post, created bool) map[string]any {
	return map[string]any{"id": p.ID, "state": p.State, "duplicate": !created,
		"status_url": "/v1/posts/" + strconv.FormatInt(p.ID, 10)}
}

// postFeed finds the feed a publisher posts to: its own, or any of the
// tenant's for the municipality.
func (s *Server) postFeed(ctx context.Context, p storage.Principal, slug string) (storage.Feed, error) {
	if slug == "" {
		return storage.Feed{}, invalid("feed", "is required")
	}
	feed, err := s.db.FeedBySlug(ctx, p.TenantID, slug)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Feed{}, invalid("feed", "unknown feed %q", slug)
	}
	if err != nil {
		return storage.Feed{}, err
	}
	if p.Publisher.Role != storage.RoleMunicipality && feed.PublisherID != p.Publisher.ID {
		return storage.Feed{}, forbidden("feed", "feed %q belongs to another publisher", slug)
	}
	return feed, nil
}

// validatePost checks a post body field by field.
func (s *Server) validatePost(b postBody, pub *storage.Publisher) (storage.Post, error) {
	now := s.now()
	post := storage.Post{Title: b.Title, Body: b.Body, URL: b.URL, Data: b.Data, Tags: b.Tags,
		ExternalID: b.ExternalID, CollapseKey: b.CollapseKey, Class: b.Class}
	switch {
	case b.Title == "":
		return post, invalid("title", "is required")
	case utf8.RuneCountInString(b.Title) > maxTitle:
		return post, invalid("title", "must be at most %d characters", maxTitle)
	case b.Body == "":
		return post, invalid("body", "is required")
	case utf8.RuneCountInString(b.Body) > maxBody:
		return post, invalid("body", "must be at most %d characters", maxBody)
	case len(b.ExternalID) > maxExternalID:
		return post, invalid("external_id", "must be at most %d bytes", maxExternalID)
	case len(b.CollapseKey) > maxCollapse:
		return post, invalid("collapse_key", "must be at most %d bytes", maxCollapse)
	case len(b.Tags) > maxTags:
		return post, invalid("tags", "at most %d tags", maxTags)
	case len(b.Data) > maxDataKeys:
		return post, invalid("data", "at most %d keys", maxDataKeys)
	}
	for _, f := range []struct{ name, value string }{{"title", b.Title}, {"body", b.Body}, {"url", b.URL},
		{"external_id", b.ExternalID}, {"collapse_key", b.CollapseKey}} {
		if err := checkText(f.name, f.value); err != nil {
			return post, err
		}
	}
	if b.URL != "" {
		u, err := url.Parse(b.URL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(b.URL) > maxURL {
			return post, invalid("url", "must be an absolute http or https URL of at most %d bytes", maxURL)
		}
	}
	if err := checkTags("tags", b.Tags); err != nil {
		return post, err
	}
	post.Tags = dedupe(b.Tags)
	for k, v := range b.Data {
		if err := checkText("data", k); err != nil {
			return post, err
		}
		if err := checkDataKey(k); err != nil {
			return post, invalid("data."+k, "%v", err)
		}
		if err := checkText("data."+k, v); err != nil {
			return post, err
		}
	}
	switch b.Class {
	case "":
		post.Class = providers.ClassCommunity
		if pub.Role == storage.RoleMunicipality {
			post.Class = providers.ClassOfficial
		}
	case providers.ClassCommunity:
	case providers.ClassOfficial, providers.ClassEmergency:
		if pub.Role != storage.RoleMunicipality {
			return post, forbidden("class", "only the municipality may send %s posts", b.Class)
		}
	default:
		return post, invalid("class", "must be community, official or emergency, not %q", b.Class)
	}
	post.PublishAt = now
	if b.PublishAt != nil {
		at, err := time.Parse(time.RFC3339, *b.PublishAt)
		if err != nil {
			return post, invalid("publish_at", "must be an RFC 3339 time such as 2026-12-01T18:00:00+01:00, not %q", *b.PublishAt)
		}
		if at.After(now.Add(maxAhead)) {
			return post, invalid("publish_at", "must be within a year")
		}
		if at.After(now) {
			post.PublishAt = at
		}
	}
	if b.ExpiresAt != nil {
		at, err := time.Parse(time.RFC3339, *b.ExpiresAt)
		if err != nil {
			return post, invalid("expires_at", "must be an RFC 3339 time such as 2026-12-01T18:00:00+01:00, not %q", *b.ExpiresAt)
		}
		if !at.After(post.PublishAt) {
			return post, invalid("expires_at", "must be after the post is published")
		}
		post.ExpiresAt = &at
	}
	if err := checkPayloadSize(post); err != nil {
		return post, err
	}
	return post, nil
}

// postJSON is a post as GET /v1/posts/{id} shows it.
type postJSON struct {
	ID          int64             `json:"id"`
	Feed        string            `json:"feed"`
	Class       string            `json:"class"`
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
	// State: accepted, dispatching, sending, done or cancelled. done is
	// sending with no delivery left pending.
	State        string         `json:"state"`
	Audience     *int           `json:"audience"`
	Counts       map[string]int `json:"counts"`
	Pending      int            `json:"pending"`
	SnapshotAt   *time.Time     `json:"snapshot_at"`
	DispatchedAt *time.Time     `json:"dispatched_at"`
	FirstSentAt  *time.Time     `json:"first_sent_at"`
	LastSentAt   *time.Time     `json:"last_sent_at"`
	// SendRate is sends per second between the first and the last.
	SendRate float64 `json:"send_rate"`
	// Paused lists the providers that refuse the tenant's credentials while
	// deliveries wait: they resume by themselves when the credentials work.
	Paused []pausedJSON `json:"paused,omitempty"`
}

type pausedJSON struct {
	Provider string    `json:"provider"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
}

var deliveryStates = []string{storage.DeliveryPending, storage.DeliverySent, storage.DeliveryFailed,
	storage.DeliveryDeadToken, storage.DeliveryDeferred, storage.DeliverySkipped, storage.DeliveryCancelled,
	storage.DeliveryExpired}

func (s *Server) getPost(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return invalid("id", "must be a post id")
	}
	post, err := s.db.Post(r.Context(), p.TenantID, id)
	if err != nil {
		return err
	}
	// Organisations see their own posts only; to them others' do not exist.
	if p.Publisher.Role != storage.RoleMunicipality && post.PublisherID != p.Publisher.ID {
		return fmt.Errorf("post %d: %w", id, storage.ErrNotFound)
	}
	pr, err := s.db.PostProgress(r.Context(), id)
	if err != nil {
		return err
	}
	out := postJSON{ID: post.ID, Feed: post.FeedSlug, Class: post.Class, Title: post.Title, Body: post.Body,
		URL: post.URL, Data: post.Data, Tags: nonNil(post.Tags), ExternalID: post.ExternalID,
		CollapseKey: post.CollapseKey, Target: post.Target, Segment: post.Segment, PublishAt: post.PublishAt, ExpiresAt: post.ExpiresAt,
		CreatedAt: post.CreatedAt, State: post.State, Audience: post.Audience, Counts: map[string]int{},
		Pending: pr.Pending(), FirstSentAt: pr.FirstSentAt, LastSentAt: pr.LastSentAt,
		SnapshotAt: post.SnapshotAt, DispatchedAt: post.DispatchedAt}
	for _, st := range deliveryStates {
		out.Counts[st] = pr.Counts[st]
	}
	if post.State == storage.PostSending && out.Pending == 0 {
		out.State = "done"
	}
	if pr.FirstSentAt != nil && pr.LastSentAt != nil {
		if d := pr.LastSentAt.Sub(*pr.FirstSentAt).Seconds(); d > 0 {
			out.SendRate = float64(pr.Counts[storage.DeliverySent]) / d
		}
	}
	if out.Pending > 0 {
		errs, err := s.db.AuthErrors(r.Context(), p.TenantID)
		if err != nil {
			return err
		}
		for _, e := range errs {
			out.Paused = append(out.Paused, pausedJSON{Provider: e.Provider, Reason: e.Reason, Since: e.Since})
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// cancelPost is DELETE /v1/posts/{id}: no further send of the post leaves
// crier, across every worker, within about a second (the workers' post
// cache); the answer says how many deliveries were cancelled.
func (s *Server) cancelPost(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return invalid("id", "must be a post id")
	}
	post, err := s.db.Post(r.Context(), p.TenantID, id)
	if err != nil {
		return err
	}
	if p.Publisher.Role != storage.RoleMunicipality && post.PublisherID != p.Publisher.ID {
		return fmt.Errorf("post %d: %w", id, storage.ErrNotFound)
	}
	n, err := s.db.CancelPost(r.Context(), p.TenantID, id)
	if errors.Is(err, storage.ErrAlreadyDelivered) {
		return &Error{Status: http.StatusConflict, Code: "already_delivered", Message: "every delivery of the post has its outcome; nothing is left to cancel"}
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "state": storage.PostCancelled, "cancelled": n})
	return nil
}
