package publish

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/geojson"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// An alert is the municipality's emergency post to everyone located in an
// area, whatever they chose (DESIGN.md): its audience is the area alone, not
// the feed's followers, and as an emergency it ignores mutes and quiet
// hours. It comes as JSON (AlertRequest) or as CAP 1.2.

// AlertRequest is a JSON alert.
type AlertRequest struct {
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

// MaxAlertRadiusM bounds the circles an alert may use: "near"'s bounds.
const MaxAlertRadiusM = 100_000

// CreateAlert sends a JSON alert.
func (s *Service) CreateAlert(ctx context.Context, p crier.Principal, r AlertRequest) (Created, error) {
	if err := p.MaySendAlerts(); err != nil {
		return Created{}, err
	}
	if isNull(r.Area) {
		return Created{}, crier.Invalid("area", "is required: where the alert is for")
	}
	post, err := s.validatePost(p, PostRequest{Title: r.Title, Body: r.Body, URL: r.URL, ExternalID: r.ExternalID,
		ExpiresAt: r.ExpiresAt, Class: string(crier.ClassEmergency)})
	if err != nil {
		return Created{}, err
	}
	if _, post.Segment, err = s.parseExpr(ctx, p.TenantID, r.Area, "area", segments.Options{}, segments.ParseTarget); err != nil {
		return Created{}, err
	}
	feed, err := s.Feed(ctx, p, r.Feed)
	if err != nil {
		return Created{}, err
	}
	return s.save(ctx, p, feed, post)
}

// CAPResult is what a CAP alert did: a post sent (Alert, Update), or the
// posts it cancelled (Cancel).
type CAPResult struct {
	// Created is the alert's post; zero for a Cancel.
	Created
	// Info is the index of the info block sent.
	Info int
	// Cancel is set for a Cancel: what it cancelled.
	Cancel *Cancelled
	// Replaced is set for an Update: what it cancelled of the alerts it
	// replaces.
	Replaced *Cancelled
	// Warnings are what the CAP reader read past.
	Warnings []string
}

// Cancelled is what cancelling the posts of CAP references did.
type Cancelled struct {
	Posts []int64
	Sends int
	// Unknown lists the references to alerts crier never sent.
	Unknown []string
}

// CreateCAPAlert sends a CAP Alert or Update on the feed, or carries out a
// Cancel. The post's external id is the alert's CAP identity (capExternalID),
// so a feed that delivers the same alert twice makes one post, and an
// Update or Cancel finds the posts it refers to.
func (s *Service) CreateCAPAlert(ctx context.Context, p crier.Principal, feedSlug string, raw []byte) (CAPResult, error) {
	if err := p.MaySendAlerts(); err != nil {
		return CAPResult{}, err
	}
	a, err := cap.Parse(raw)
	if err != nil {
		return CAPResult{}, err
	}
	if err := sendable(a); err != nil {
		return CAPResult{}, err
	}
	res := CAPResult{Warnings: a.Warnings}
	if a.MsgType == "Cancel" {
		c, err := s.cancelReferenced(ctx, p, a.References)
		res.Cancel = &c
		return res, err
	}
	i, ok := chooseInfo(a.Infos)
	if !ok {
		return CAPResult{}, crier.Invalid("alert.info", "an alert needs an info block to be sent")
	}
	res.Info = i
	post, err := s.capPost(p, a, i)
	if err != nil {
		return CAPResult{}, err
	}
	var warning string
	if post.Segment, warning, err = s.capSegment(ctx, a.Infos[i], fmt.Sprintf("alert.info[%d]", i)); err != nil {
		return CAPResult{}, err
	}
	if warning != "" {
		res.Warnings = append(res.Warnings, warning)
	}
	feed, err := s.Feed(ctx, p, feedSlug)
	if e := crier.AsError(err); e != nil && e.Field == "feed" {
		c := *e
		c.Message += " (a CAP alert names its feed as ?feed=slug)"
		err = &c
	}
	if err != nil {
		return CAPResult{}, err
	}
	if res.Created, err = s.save(ctx, p, feed, post); err != nil {
		return CAPResult{}, err
	}
	// An Update replaces the alerts it refers to: what they have not sent
	// yet is cancelled, once the update is on its way. Feeds' updates
	// sometimes name themselves among the references.
	refs := slices.DeleteFunc(slices.Clone(a.References), func(ref cap.Reference) bool {
		return capExternalID(ref.Sender, ref.Identifier, ref.Sent) == res.Post.ExternalID
	})
	if a.MsgType == "Update" && len(refs) > 0 {
		c, err := s.cancelReferenced(ctx, p, refs)
		if err != nil {
			return CAPResult{}, err
		}
		res.Replaced = &c
	}
	return res, nil
}

// sendable refuses what is not for residents: only Actual, Public alerts
// of type Alert, Update or Cancel are sent, and a Cancel must say what it
// cancels.
func sendable(a *cap.Alert) error {
	switch {
	case a.Status != "Actual":
		return crier.Invalid("alert.status", "%s alerts are not sent to residents; only Actual ones are", a.Status)
	case a.Scope != "Public":
		return crier.Invalid("alert.scope", "%s alerts are not sent to residents; only Public ones are", a.Scope)
	}
	switch a.MsgType {
	case "Alert", "Update":
		return nil
	case "Cancel":
		if len(a.References) == 0 {
			return crier.Invalid("alert.references", "a Cancel must name the alerts it cancels")
		}
		return nil
	}
	return crier.Invalid("alert.msgType", "%s messages are not sent to residents; Alert, Update and Cancel are", a.MsgType)
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
			if slices.Contains(prefer, primary) {
				return i, true
			}
		}
	}
	return 0, true
}

// capPost makes the emergency post of a CAP alert's info block i, all but
// its audience (capSegment).
func (s *Service) capPost(p crier.Principal, a *cap.Alert, i int) (storage.Post, error) {
	in := a.Infos[i]
	path := fmt.Sprintf("alert.info[%d]", i)
	r := PostRequest{Title: cmp.Or(in.Headline, in.Event), Class: string(crier.ClassEmergency),
		ExternalID: capExternalID(a.Sender, a.Identifier, a.Sent)}
	var parts []string
	for _, t := range []string{in.Description, in.Instruction} {
		if t != "" {
			parts = append(parts, t)
		}
	}
	r.Body = cmp.Or(strings.Join(parts, "\n\n"), in.Event)
	r.Title, r.Body = truncate(r.Title, MaxTitle), truncate(r.Body, MaxBody)
	if validLink(in.Web) {
		r.URL = in.Web
	}
	r.Body = fitPayload(r.Title, r.Body, r.URL)
	if !in.Expires.IsZero() {
		if !in.Expires.After(s.cfg.Now()) {
			return storage.Post{}, crier.Invalid(path+".expires", "the alert expired at %s", in.Expires.Format(time.RFC3339))
		}
		at := in.Expires.Format(time.RFC3339)
		r.ExpiresAt = &at
	}
	post, err := s.validatePost(p, r)
	if e := crier.AsError(err); e != nil {
		// Name the CAP element the post's field came from.
		c := *e
		c.Field = path + map[string]string{"title": ".headline", "body": ".description", "url": ".web",
			"expires_at": ".expires"}[e.Field]
		return storage.Post{}, &c
	}
	return post, err
}

// fitPayload shortens an alert's body until its payloads fit the providers'
// 4 KB: a long alert in a script of several bytes a character can outgrow
// it, and is shortened rather than refused.
func fitPayload(title, body, url string) string {
	for checkPayloadSize(storage.Post{Title: title, Body: body, URL: url, Class: crier.ClassEmergency}) != nil {
		n := utf8.RuneCountInString(body) * 4 / 5
		if n < 40 {
			break // what is left is validatePost's to refuse
		}
		body = truncate(body, n)
	}
	return body
}

// capSegment is the audience of an info block: every device located in one
// of its areas' polygons or circles. The polygons are united and repaired in
// PostGIS first: real feeds send areas that overlap or share borders, and
// rings that cross themselves. Polygons of more positions than a segment
// holds are simplified to fit, and grown so that they still cover the whole
// area: an alert may reach a little beyond its area, never fall short of it.
// The warning says so.
func (s *Service) capSegment(ctx context.Context, in cap.Info, path string) (seg []byte, warning string, err error) {
	var polygons geojson.MultiPolygon
	var leaves []any
	for j, area := range in.Areas {
		polygons = append(polygons, area.Polygons...)
		for k, c := range area.Circles {
			if c.RadiusM < 1 || c.RadiusM > MaxAlertRadiusM {
				return nil, "", crier.Invalid(fmt.Sprintf("%s.area[%d].circle[%d]", path, j, k),
					"a radius of %g km: crier sends to circles of 1 m to %d km; use a polygon", c.RadiusM/1000, MaxAlertRadiusM/1000)
			}
			leaves = append(leaves, map[string]any{"near": map[string]float64{"lat": c.Lat, "lon": c.Lon, "radius_m": c.RadiusM}})
		}
	}
	if len(polygons) > 0 {
		united, tolerance, err := s.db.UnionPolygons(ctx, polygons.JSON(), segments.MaxVertices)
		var ae *storage.AreaError
		if errors.As(err, &ae) {
			return nil, "", crier.Invalid(path+".area", "%s", ae.Reason)
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
		return nil, "", crier.Invalid(path+".area", "no polygon or circle to send to: crier finds residents by coordinates, "+
			"and cannot place geocodes")
	}
	raw, err := json.Marshal(map[string]any{"or": leaves})
	if err != nil {
		return nil, "", err
	}
	e, err := segments.Parse(raw, segments.Options{})
	if err != nil {
		msg := err.Error()
		if ce := crier.AsError(err); ce != nil {
			msg = ce.Message
		}
		return nil, "", crier.Invalid(path+".area", "%s", msg)
	}
	seg, err = json.Marshal(e)
	return seg, warning, err
}

// capExternalID is the external id of a CAP alert's post: its sender,
// identifier and sent time, hashed when that is too long to store.
func capExternalID(sender, identifier string, sent time.Time) string {
	id := "cap:" + sender + "," + identifier + "," + sent.UTC().Format(time.RFC3339)
	if len(id) > MaxExternalID {
		sum := sha256.Sum256([]byte(id))
		id = "cap:sha256:" + hex.EncodeToString(sum[:])
	}
	return id
}

// cancelReferenced cancels what the referenced alerts' posts have not sent.
// References to alerts crier never sent are listed, not refused: a feed's
// Cancel often names alerts from before crier took the feed.
func (s *Service) cancelReferenced(ctx context.Context, p crier.Principal, refs []cap.Reference) (Cancelled, error) {
	c := Cancelled{Posts: []int64{}}
	for _, ref := range refs {
		id, err := s.db.PostIDByExternalID(ctx, p.PublisherID(), capExternalID(ref.Sender, ref.Identifier, ref.Sent))
		if errors.Is(err, storage.ErrNotFound) {
			c.Unknown = append(c.Unknown, ref.Sender+","+ref.Identifier+","+ref.Sent.Format(time.RFC3339))
			continue
		}
		if err != nil {
			return c, err
		}
		n, err := s.db.CancelPost(ctx, p.TenantID, id)
		if err != nil && !errors.Is(err, storage.ErrAlreadyDelivered) {
			return c, err
		}
		c.Posts = append(c.Posts, id)
		c.Sends += n
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
