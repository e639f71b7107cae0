package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// defaultHistoryPage is a page of a device's notification history when the
// app asks for no size.
const defaultHistoryPage = 20

// deliveryJSON is one entry of a device's notification history: the post in
// the device's language, what became of its push, and why the device was
// sent it.
type deliveryJSON struct {
	PostID int64       `json:"post_id"`
	Feed   string      `json:"feed"`
	Class  crier.Class `json:"class"`
	Title  string      `json:"title"`
	Body   string      `json:"body"`
	URL    string      `json:"url,omitempty"`
	// State is the push's: pending, deferred (until DeferredUntil: the
	// device's quiet hours), sent, skipped, expired, cancelled, failed,
	// dead_token; Reason says why for those that did not go.
	State         crier.DeliveryState `json:"state"`
	Reason        string              `json:"reason,omitempty"`
	DeferredUntil *time.Time          `json:"deferred_until,omitempty"`
	CreatedAt     time.Time           `json:"created_at"`
	SentAt        *time.Time          `json:"sent_at,omitempty"`
	ReceivedAt    *time.Time          `json:"received_at,omitempty"`
	DisplayedAt   *time.Time          `json:"displayed_at,omitempty"`
	Why           whyJSON             `json:"why"`
}

// whyJSON is why a device was sent a post: the rule (segments.Why*), the
// interest that matched, and for a post to an area, the area and how the
// device is in it: through one of its places (by name) or an area it
// subscribed to.
type whyJSON struct {
	Rule           string `json:"rule"`
	Interest       string `json:"interest,omitempty"`
	Area           string `json:"area,omitempty"`
	Place          string `json:"place,omitempty"`
	SubscribedArea string `json:"subscribed_area,omitempty"`
}

func whyOf(w segments.WhyText) whyJSON {
	out := whyJSON{Rule: w.Rule, Area: w.Area}
	if out.Rule == "" {
		// Snapshotted before crier recorded reasons.
		out.Rule = "unknown"
	}
	if w.Rule == segments.WhyInterest {
		out.Interest = w.Detail
	}
	switch w.Via {
	case segments.ViaPlace:
		out.Place = w.Name
	case segments.ViaArea:
		out.SubscribedArea = w.Name
	}
	return out
}

func deliveryOf(locale string, d storage.Delivery) deliveryJSON {
	p := d.Post
	text, _ := crier.DeviceText(locale, crier.Text{Title: p.Title, Body: p.Body}, p.Language,
		p.Translations, p.TenantLanguage, p.Exercise)
	out := deliveryJSON{PostID: d.PostID, Feed: p.FeedSlug, Class: p.Class, Title: text.Title, Body: text.Body,
		URL: p.URL, State: d.State, Reason: d.Reason, CreatedAt: d.CreatedAt, SentAt: d.SentAt,
		ReceivedAt: d.ReceivedAt, DisplayedAt: d.DisplayedAt, Why: whyOf(d.Why)}
	if d.State == crier.DeliveryDeferred {
		out.DeferredUntil = d.NotBefore
	}
	return out
}

// getDeliveries is a device's notification history, newest first:
// ?limit= (1-100, default 20), ?before= the next page's cursor (next_before
// of the page before, a post id). It needs the device secret.
func (s *Server) getDeliveries(w http.ResponseWriter, r *http.Request) error {
	d, err := s.ownDevice(r)
	if err != nil {
		return err
	}
	before, limit, err := historyQuery(r.URL.Query())
	if err != nil {
		return err
	}
	ds, err := s.db.DeviceDeliveries(r.Context(), d.TenantID, d.ID, before, limit)
	if err != nil {
		return err
	}
	out := map[string]any{"deliveries": deliveriesOf(d.Locale, ds)}
	if len(ds) == limit {
		last := ds[len(ds)-1].PostID
		q := r.URL.Query()
		q.Set("before", strconv.FormatInt(last, 10))
		out["next_before"] = last
		out["next"] = r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func deliveriesOf(locale string, ds []storage.Delivery) []deliveryJSON {
	out := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		out[i] = deliveryOf(locale, d)
	}
	return out
}

func historyQuery(q url.Values) (before int64, limit int, err error) {
	limit = defaultHistoryPage
	for name, vs := range q {
		v := vs[0]
		switch name {
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > storage.MaxHistoryPage {
				return 0, 0, crier.Invalid("limit", "must be a number from 1 to %d", storage.MaxHistoryPage)
			}
			limit = n
		case "before":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				return 0, 0, crier.Invalid("before", "must be a post id (next_before of the page before)")
			}
			before = n
		default:
			return 0, 0, crier.Invalid(name, "unknown parameter: want limit or before")
		}
	}
	return before, limit, nil
}

// getDelivery is a device's delivery of one post, with why it was sent.
func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) error {
	postID, err := strconv.ParseInt(r.PathValue("post"), 10, 64)
	if err != nil || postID <= 0 {
		return crier.Invalid("post", "must be a post id")
	}
	d, err := s.ownDevice(r)
	if err != nil {
		return err
	}
	dl, err := s.db.DeviceDelivery(r.Context(), d.TenantID, d.ID, postID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deliveryOf(d.Locale, dl))
	return nil
}

// exportJSON is everything crier stores about a device (the resident's
// right of access): its record with every choice and place, and every
// delivery to it with its reason and receipt.
type exportJSON struct {
	ExportedAt time.Time      `json:"exported_at"`
	Device     Device         `json:"device"`
	Test       bool           `json:"test_device"`
	UpdatedAt  time.Time      `json:"updated_at"`
	Deliveries []deliveryJSON `json:"deliveries"`
}

// exportDevice is GET /v1/devices/{installation_id}/export, with the
// device secret.
func (s *Server) exportDevice(w http.ResponseWriter, r *http.Request) error {
	d, err := s.ownDevice(r)
	if err != nil {
		return err
	}
	ds, err := s.db.AllDeviceDeliveries(r.Context(), d.TenantID, d.ID)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Disposition", `attachment; filename="crier-device-export.json"`)
	writeJSON(w, http.StatusOK, exportJSON{ExportedAt: time.Now().UTC(), Device: deviceJSON(d), Test: d.Test,
		UpdatedAt: d.UpdatedAt, Deliveries: deliveriesOf(d.Locale, ds)})
	return nil
}
