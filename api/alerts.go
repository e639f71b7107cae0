package api

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/geojson"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// An alert is the municipality's emergency post to everyone located in an
// area, whatever they chose (DESIGN.md): its audience is the area alone, not
// the feed's followers, and as an emergency it ignores mutes and quiet hours.
// POST /v1/alerts takes it as CAP 1.2 (application/cap+xml, application/xml
// or text/xml, the feed as ?feed=slug) or as JSON.

// alertBody is a JSON alert.
type alertBody struct {
	Feed  string `json:"feed"`
	Title string `json:"title"`
	Body  string `json:"body"`
	URL   string `json:"url"`
	// Area is where the alert is for, in the syntax of a post's target:
	// area slugs, a GeoJSON Polygon or MultiPolygon, or {"lat", "lon",
	// "radius_m"}.
	Area       json.RawMessage `json:"area"`
	ExternalID string          `json:"external_id"`
	ExpiresAt  *string         `json:"expires_at"`
}

// Circles a CAP alert may use: "near"'s bounds.
const maxAlertRadiusM = 100_000

func (s *Server) createAlert(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	if p.Publisher.Role != storage.RoleMunicipality {
		return forbidden("", "only the municipality sends alerts")
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/cap+xml", "application/xml", "text/xml":
		return s.createCAPAlert(w, r, p)
	case "", "application/json":
		return s.createJSONAlert(w, r, p)
	}
	return &Error{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
		Message: "Content-Type must be application/json or, for CAP 1.2, application/cap+xml"}
}

func (s *Server) createJSONAlert(w http.ResponseWriter, r *http.Request, p storage.Principal) error {
	var b alertBody
	if err := decode(w, r, &b); err != nil {
		return err
	}
	if b.Area == nil || string(b.Area) == "null" {
		return invalid("area", "is required: where the alert is for")
	}
	post, err := s.validatePost(postBody{Title: b.Title, Body: b.Body, URL: b.URL, ExternalID: b.ExternalID,
		ExpiresAt: b.ExpiresAt, Class: providers.ClassEmergency}, p.Publisher)
	if err != nil {
		return err
	}
	if post.Segment, err = s.parseExpr(r.Context(), p.TenantID, b.Area, "area", segments.Options{Root: "area"},
		segments.ParseTarget); err != nil {
		return err
	}
	saved, created, err := s.saveAlert(r.Context(), p, b.Feed, post)
	if err != nil {
		return err
	}
	writeJSON(w, createdStatus(created), postCreated(saved, created))
	return nil
}

// saveAlert stores an alert's post on the feed and enqueues its dispatch.
func (s *Server) saveAlert(ctx context.Context, p storage.Principal, feedSlug string, post storage.Post) (storage.Post, bool, error) {
	feed, err := s.postFeed(ctx, p, feedSlug)
	if err != nil {
		return storage.Post{}, false, err
	}
	post.TenantID, post.FeedID, post.PublisherID = p.TenantID, feed.ID, p.Publisher.ID
	return s.savePost(ctx, post)
}

// createCAPAlert sends a CAP Alert or Update, or carries out a Cancel. The
// post's external id is the alert's CAP identity (capExternalID), so a feed
// that delivers the same alert twice makes one post, and an Update or
// Cancel finds the posts it refers to.
func (s *Server) createCAPAlert(w http.ResponseWriter, r *http.Request, p storage.Principal) error {
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cap.MaxSize))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too_large",
			Message: fmt.Sprintf("body over %d bytes", tooBig.Limit)}
	}
	if err != nil {
		return invalid("", "reading the body: %v", err)
	}
	a, err := cap.Parse(raw)
	var ce *cap.Error
	if errors.As(err, &ce) {
		return invalid(ce.Path, "%s", ce.Message)
	}
	if err != nil {
		return err
	}
	switch {
	case a.Status != "Actual":
		return invalid("alert.status", "%s alerts are not sent to residents; only Actual ones are", a.Status)
	case a.Scope != "Public":
		return invalid("alert.scope", "%s alerts are not sent to residents; only Public ones are", a.Scope)
	}
	switch a.MsgType {
	case "Cancel":
		if len(a.References) == 0 {
			return invalid("alert.references", "a Cancel must name the alerts it cancels")
		}
		res, err := s.cancelReferenced(r.Context(), p, a.References)
		if err != nil {
			return err
		}
		out := res.json()
		if len(a.Warnings) > 0 {
			out["warnings"] = a.Warnings
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	case "Alert", "Update":
	default:
		return invalid("alert.msgType", "%s messages are not sent to residents; Alert, Update and Cancel are", a.MsgType)
	}
	i, ok := chooseInfo(a.Infos)
	if !ok {
		return invalid("alert.info", "an alert needs an info block to be sent")
	}
	post, err := s.capPost(a, i, p.Publisher)
	if err != nil {
		return err
	}
	warnings := a.Warnings
	var warning string
	if post.Segment, warning, err = s.capSegment(r.Context(), a.Infos[i], fmt.Sprintf("alert.info[%d]", i)); err != nil {
		return err
	}
	if warning != "" {
		warnings = append(warnings, warning)
	}
	saved, created, err := s.saveAlert(r.Context(), p, r.URL.Query().Get("feed"), post)
	var ae *Error
	if errors.As(err, &ae) && ae.Field == "feed" {
		ae.Message += " (a CAP alert names its feed as ?feed=slug)"
	}
	if err != nil {
		return err
	}
	out := postCreated(saved, created)
	out["info"] = i
	if len(warnings) > 0 {
		out["warnings"] = warnings
	}
	// An Update replaces the alerts it refers to: what they have not sent
	// yet is cancelled, once the update is on its way.
	// Feeds' updates sometimes name themselves among the references.
	refs := slices.DeleteFunc(slices.Clone(a.References), func(ref cap.Reference) bool {
		return capExternalID(ref.Sender, ref.Identifier, ref.Sent) == saved.ExternalID
	})
	if a.MsgType == "Update" && len(refs) > 0 {
		res, err := s.cancelReferenced(r.Context(), p, refs)
		if err != nil {
			return err
		}
		out["replaced"] = res.json()
	}
	writeJSON(w, createdStatus(created), out)
	return nil
}

// chooseInfo picks the info block to send: Norwegian (no, nb, nn) first,
// then English, then the first.
func chooseInfo(infos []cap.Info) (int, bool) {
	if len(infos) == 0 {
		return 0, false
	}
	for _, prefer := range [][]string{{"no", "nb", "nn"}, {"en"}} {
		for i, in := range infos {
			primary, _, _ := strings.Cut(strings.ToLower(in.Language), "-")
			for _, l := range prefer {
				if primary == l {
					return i, true
				}
			}
		}
	}
	return 0, true
}

// capPost makes the emergency post of a CAP alert's info block i, all but
// its audience (capSegment).
func (s *Server) capPost(a *cap.Alert, i int, pub *storage.Publisher) (storage.Post, error) {
	in := a.Infos[i]
	path := fmt.Sprintf("alert.info[%d]", i)
	b := postBody{Title: cmp.Or(in.Headline, in.Event), Class: providers.ClassEmergency,
		ExternalID: capExternalID(a.Sender, a.Identifier, a.Sent)}
	var parts []string
	for _, t := range []string{in.Description, in.Instruction} {
		if t != "" {
			parts = append(parts, t)
		}
	}
	b.Body = cmp.Or(strings.Join(parts, "\n\n"), in.Event)
	b.Title, b.Body = truncate(b.Title, maxTitle), truncate(b.Body, maxBody)
	if u, err := url.Parse(in.Web); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && len(in.Web) <= maxURL {
		b.URL = in.Web
	}
	// A long alert in a script of several bytes a character can outgrow the
	// providers' 4 KB payload: its body is shortened rather than the alert
	// refused.
	for checkPayloadSize(storage.Post{Title: b.Title, Body: b.Body, URL: b.URL, Class: b.Class}) != nil {
		n := utf8.RuneCountInString(b.Body) * 4 / 5
		if n < 40 {
			break // what is left is validatePost's to refuse
		}
		b.Body = truncate(b.Body, n)
	}
	if !in.Expires.IsZero() {
		if !in.Expires.After(s.now()) {
			return storage.Post{}, invalid(path+".expires", "the alert expired at %s", in.Expires.Format(time.RFC3339))
		}
		at := in.Expires.Format(time.RFC3339)
		b.ExpiresAt = &at
	}
	post, err := s.validatePost(b, pub)
	var ae *Error
	if errors.As(err, &ae) {
		// Name the CAP element the post's field came from.
		ae.Field = path + map[string]string{"title": ".headline", "body": ".description", "url": ".web",
			"expires_at": ".expires"}[ae.Field]
	}
	if err != nil {
		return storage.Post{}, err
	}
	return post, nil
}

// capSegment is the audience of an info block: every device located in one
// of its areas' polygons or circles. The polygons are united and repaired in
// PostGIS first: real feeds send areas that overlap or share borders, and
// rings that cross themselves. Polygons of more positions than a segment
// holds are simplified to fit, and grown so that they still cover the whole
// area: an alert may reach a little beyond its area, never fall short of it.
// The warning says so.
func (s *Server) capSegment(ctx context.Context, in cap.Info, path string) (seg []byte, warning string, err error) {
	var polygons geojson.MultiPolygon
	var leaves []any
	for j, area := range in.Areas {
		polygons = append(polygons, area.Polygons...)
		for k, c := range area.Circles {
			if c.RadiusM < 1 || c.RadiusM > maxAlertRadiusM {
				return nil, "", invalid(fmt.Sprintf("%s.area[%d].circle[%d]", path, j, k),
					"a radius of %g km: crier sends to circles of 1 m to %d km; use a polygon", c.RadiusM/1000, maxAlertRadiusM/1000)
			}
			leaves = append(leaves, map[string]any{"near": map[string]float64{"lat": c.Lat, "lon": c.Lon, "radius_m": c.RadiusM}})
		}
	}
	if len(polygons) > 0 {
		united, tolerance, err := s.db.UnionPolygons(ctx, polygons.JSON(), segments.MaxVertices)
		var ae *storage.AreaError
		if errors.As(err, &ae) {
			return nil, "", invalid(path+".area", "%s", ae.Reason)
		}
		if err != nil {
			return nil, "", err
		}
		if tolerance > 0 {
			warning = fmt.Sprintf("%s.area: %d positions in its polygons, more than the %d an audience holds: simplified, "+
				"and grown by up to %.0f m to cover the whole area", path, polygons.Vertices(), segments.MaxVertices,
				tolerance*111_320)
		}
		leaves = append(leaves, map[string]json.RawMessage{"within": united})
	}
	if len(leaves) == 0 {
		return nil, "", invalid(path+".area", "no polygon or circle to send to: crier finds residents by coordinates, "+
			"and cannot place geocodes")
	}
	raw, err := json.Marshal(map[string]any{"or": leaves})
	if err != nil {
		return nil, "", err
	}
	e, err := segments.Parse(raw, segments.Options{})
	var se *segments.Error
	if errors.As(err, &se) {
		return nil, "", invalid(path+".area", "%s", se.Message)
	}
	if err != nil {
		return nil, "", invalid(path+".area", "%v", err)
	}
	seg, err = json.Marshal(e)
	return seg, warning, err
}

// capExternalID is the external id of a CAP alert's post: its sender,
// identifier and sent time, hashed when that is too long to store.
func capExternalID(sender, identifier string, sent time.Time) string {
	id := "cap:" + sender + "," + identifier + "," + sent.UTC().Format(time.RFC3339)
	if len(id) > maxExternalID {
		sum := sha256.Sum256([]byte(id))
		id = "cap:sha256:" + hex.EncodeToString(sum[:])
	}
	return id
}

// cancelled is what cancelling the posts of CAP references did.
type cancelled struct {
	posts   []int64
	sends   int
	unknown []string
}

func (c cancelled) json() map[string]any {
	out := map[string]any{"cancelled_posts": c.posts, "cancelled": c.sends}
	if len(c.unknown) > 0 {
		out["unknown_references"] = c.unknown
	}
	return out
}

// cancelReferenced cancels what the referenced alerts' posts have not sent.
// References to alerts crier never sent are listed, not refused: a feed's
// Cancel often names alerts from before crier took the feed.
func (s *Server) cancelReferenced(ctx context.Context, p storage.Principal, refs []cap.Reference) (cancelled, error) {
	c := cancelled{posts: []int64{}}
	for _, ref := range refs {
		id, err := s.db.PostIDByExternalID(ctx, p.Publisher.ID, capExternalID(ref.Sender, ref.Identifier, ref.Sent))
		if errors.Is(err, storage.ErrNotFound) {
			c.unknown = append(c.unknown, ref.Sender+","+ref.Identifier+","+ref.Sent.Format(time.RFC3339))
			continue
		}
		if err != nil {
			return c, err
		}
		n, err := s.db.CancelPost(ctx, p.TenantID, id)
		if err != nil && !errors.Is(err, storage.ErrAlreadyDelivered) {
			return c, err
		}
		c.posts = append(c.posts, id)
		c.sends += n
	}
	return c, nil
}

// truncate shortens s to at most n characters, ending with an ellipsis when
// it cuts.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}
