package publish

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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
	// Language is the language of title and body, "" for the tenant's;
	// Translations are the texts in other languages.
	Language     string                `json:"language"`
	Translations map[string]crier.Text `json:"translations"`
	// Area is where the alert is for, in the syntax of a post's target:
	// area slugs, a GeoJSON Polygon or MultiPolygon, or {"lat", "lon",
	// "radius_m"}.
	Area       json.RawMessage `json:"area"`
	ExternalID string          `json:"external_id"`
	ExpiresAt  *string         `json:"expires_at"`
	// Exercise sends the alert to the tenant's test devices only, marked.
	Exercise bool `json:"exercise"`
}

// FollowUpRequest is a JSON alert's update or cancel (all-clear): its own
// text, and for an update the area if it changed. A cancel without text
// gets the all-clear in each device's language.
type FollowUpRequest struct {
	Title        string                `json:"title"`
	Body         string                `json:"body"`
	URL          string                `json:"url"`
	Language     string                `json:"language"`
	Translations map[string]crier.Text `json:"translations"`
	Area         json.RawMessage       `json:"area"`
	ExternalID   string                `json:"external_id"`
	ExpiresAt    *string               `json:"expires_at"`
}

// MaxAlertRadiusM bounds the circles an alert may use: "near"'s bounds.
const MaxAlertRadiusM = 100_000

// CreateAlert sends a JSON alert: the first message of an incident.
func (s *Service) CreateAlert(ctx context.Context, p crier.Principal, r AlertRequest) (Created, error) {
	if err := p.MaySendAlerts(); err != nil {
		return Created{}, err
	}
	if isNull(r.Area) {
		return Created{}, crier.Invalid("area", "is required: where the alert is for")
	}
	post, err := s.alertPost(p, PostRequest{Title: r.Title, Body: r.Body, URL: r.URL, ExternalID: r.ExternalID,
		ExpiresAt: r.ExpiresAt}, r.Language, r.Translations, r.Exercise)
	if err != nil {
		return Created{}, err
	}
	if _, post.Segment, err = s.parseExpr(ctx, p.TenantID, r.Area, "area", segments.Options{}, segments.ParseTarget); err != nil {
		return Created{}, err
	}
	if err := s.checkAlertArea(ctx, p, post.Segment); err != nil {
		return Created{}, err
	}
	feed, err := s.Feed(ctx, p, r.Feed)
	if err != nil {
		return Created{}, err
	}
	post.MsgType = crier.MsgAlert
	return s.save(ctx, p, feed, post)
}

// alertPost validates an alert's text: an emergency post, in its language
// and its translations.
func (s *Service) alertPost(p crier.Principal, r PostRequest, lang string, tr map[string]crier.Text, exercise bool) (storage.Post, error) {
	r.Class = string(crier.ClassEmergency)
	post, err := s.validatePost(p, r)
	if err != nil {
		return storage.Post{}, err
	}
	// An exercise's mark counts in its payload's size.
	post.Exercise = exercise
	if post.Language, post.Translations, err = checkTranslations(post, lang, tr); err != nil {
		return storage.Post{}, err
	}
	return post, nil
}

// FollowUp is what a follow-up did: a message sent to the incident, or,
// for the cancel of an incident that reached no one yet, the messages it
// withdrew.
type FollowUp struct {
	Created
	// IncidentID is the incident the follow-up belongs to.
	IncidentID int64
	// Withdrawn lists the messages a cancel withdrew before they went
	// (awaiting approval, or not dispatched); no all-clear is sent then.
	Withdrawn []int64
}

// incident is an incident's messages as a follow-up finds them.
type incident struct {
	messages []storage.Post
	// live: a message of it went, or may be going, to residents.
	live bool
	// latest is the last message with an area: a follow-up without one
	// of its own keeps it.
	latest storage.Post
}

// findIncident reads the incident of an alert the principal may see, by the
// id of any of its messages, and refuses a follow-up of one that is over.
func (s *Service) findIncident(ctx context.Context, p crier.Principal, id int64) (incident, error) {
	post, err := s.visiblePost(ctx, p, id)
	if err != nil {
		return incident{}, err
	}
	if post.IncidentID == 0 {
		return incident{}, crier.Invalid("id", "post %d is no alert", id)
	}
	msgs, err := s.db.Incident(ctx, p.TenantID, post.IncidentID)
	if err != nil {
		return incident{}, err
	}
	inc := incident{messages: msgs, latest: msgs[0]}
	ids := make([]int64, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
		switch m.State {
		case crier.PostDispatching, crier.PostSending:
			// Sends may be under way; an accepted message has none yet.
			inc.live = true
		}
		if m.MsgType == crier.MsgCancel && m.State != crier.PostCancelled && m.State != crier.PostLapsed {
			return incident{}, crier.Errorf(crier.ECONFLICT, "id", "incident %d was cancelled (all-clear, post %d): it is over",
				post.IncidentID, m.ID)
		}
		if m.Segment != nil && m.State != crier.PostLapsed {
			inc.latest = m
		}
	}
	if !inc.live {
		reached, err := s.db.Reached(ctx, ids)
		if err != nil {
			return incident{}, err
		}
		inc.live = len(reached) > 0
	}
	return inc, nil
}

// UpdateAlert sends an update of a JSON alert's incident: to everyone an
// earlier message reached and everyone in its area (the earlier one's if
// it names none). The earlier messages' unsent rest is cancelled when it
// goes.
func (s *Service) UpdateAlert(ctx context.Context, p crier.Principal, id int64, r FollowUpRequest) (FollowUp, error) {
	if err := p.MaySendAlerts(); err != nil {
		return FollowUp{}, err
	}
	inc, err := s.findIncident(ctx, p, id)
	if err != nil {
		return FollowUp{}, err
	}
	post, err := s.alertPost(p, PostRequest{Title: r.Title, Body: r.Body, URL: r.URL, ExternalID: r.ExternalID,
		ExpiresAt: r.ExpiresAt}, r.Language, r.Translations, inc.messages[0].Exercise)
	if err != nil {
		return FollowUp{}, err
	}
	post.Segment = inc.latest.Segment
	if !isNull(r.Area) {
		if _, post.Segment, err = s.parseExpr(ctx, p.TenantID, r.Area, "area", segments.Options{}, segments.ParseTarget); err != nil {
			return FollowUp{}, err
		}
		if err := s.checkAlertArea(ctx, p, post.Segment); err != nil {
			return FollowUp{}, err
		}
	}
	return s.followUp(ctx, p, inc, crier.MsgUpdate, post)
}

// CancelAlert sends the all-clear of a JSON alert's incident to everyone an
// earlier message reached, with its own text or the default one in each
// device's language; it never waits for approval. An incident that reached
// no one yet is withdrawn instead, with nothing sent.
func (s *Service) CancelAlert(ctx context.Context, p crier.Principal, id int64, r FollowUpRequest) (FollowUp, error) {
	if err := p.MaySendAlerts(); err != nil {
		return FollowUp{}, err
	}
	if !isNull(r.Area) {
		return FollowUp{}, crier.Invalid("area", "a cancel goes to everyone the incident reached; it has no area")
	}
	inc, err := s.findIncident(ctx, p, id)
	if err != nil {
		return FollowUp{}, err
	}
	if !inc.live {
		return s.withdraw(ctx, p, inc)
	}
	var post storage.Post
	if r.Title == "" && r.Body == "" && len(r.Translations) == 0 {
		post, err = s.allClear(p, inc, r.ExternalID)
	} else {
		post, err = s.alertPost(p, PostRequest{Title: r.Title, Body: r.Body, URL: r.URL, ExternalID: r.ExternalID,
			ExpiresAt: r.ExpiresAt}, r.Language, r.Translations, inc.messages[0].Exercise)
	}
	if err != nil {
		return FollowUp{}, err
	}
	post.Segment = inc.latest.Segment
	return s.followUp(ctx, p, inc, crier.MsgCancel, post)
}

// withdraw cancels the messages of an incident that reached no one.
func (s *Service) withdraw(ctx context.Context, p crier.Principal, inc incident) (FollowUp, error) {
	f := FollowUp{IncidentID: inc.messages[0].IncidentID, Withdrawn: []int64{}}
	for _, m := range inc.messages {
		if m.State == crier.PostCancelled || m.State == crier.PostLapsed {
			continue
		}
		if _, err := s.db.CancelPost(ctx, p.TenantID, m.ID); err != nil && !errors.Is(err, storage.ErrAlreadyDelivered) {
			return FollowUp{}, err
		}
		f.Withdrawn = append(f.Withdrawn, m.ID)
	}
	return f, nil
}

// followUp saves a follow-up message of an incident, on the incident's feed,
// an exercise if the incident is one.
func (s *Service) followUp(ctx context.Context, p crier.Principal, inc incident, kind crier.MsgType, post storage.Post) (FollowUp, error) {
	first := inc.messages[0]
	post.IncidentID, post.MsgType, post.Exercise = first.IncidentID, kind, first.Exercise
	feed, err := s.Feed(ctx, p, first.FeedSlug)
	if err != nil {
		return FollowUp{}, err
	}
	c, err := s.save(ctx, p, feed, post)
	if err != nil {
		return FollowUp{}, err
	}
	return FollowUp{Created: c, IncidentID: first.IncidentID}, nil
}

// CAPResult is what a CAP message did: a message of an incident sent (an
// Alert, Update or Cancel), or for a Cancel of an incident that reached no
// one, the messages withdrawn.
type CAPResult struct {
	FollowUp
	// MsgType is what the message is in its incident.
	MsgType crier.MsgType
	// Unknown lists the references to alerts crier never sent.
	Unknown []string
	// Warnings are what the CAP reader read past.
	Warnings []string
}

// CreateCAPAlert sends a CAP Alert, Update or Cancel on the feed. The
// post's external id is the alert's CAP identity (capExternalID), so a feed
// that delivers the same message twice makes one post, and an Update or
// Cancel finds its incident through the posts it refers to. An Update of
// alerts crier never sent starts an incident; a Cancel of them does
// nothing. Exercise and Test messages go to the test devices only.
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
	res := CAPResult{Warnings: a.Warnings, MsgType: crier.MsgAlert}
	exercise := a.Status != "Actual"
	inc, unknown, err := s.referencedIncident(ctx, p, a)
	if err != nil {
		return CAPResult{}, err
	}
	res.Unknown = unknown
	if inc != nil {
		if first := inc.messages[0]; first.Exercise != exercise {
			return CAPResult{}, crier.Invalid("alert.status", "%s: the incident it follows up (post %d) is %s",
				a.Status, first.ID, map[bool]string{true: "an exercise", false: "real"}[first.Exercise])
		}
		res.MsgType = map[string]crier.MsgType{"Update": crier.MsgUpdate, "Cancel": crier.MsgCancel}[a.MsgType]
	}
	if a.MsgType == "Cancel" {
		if inc == nil {
			res.Withdrawn = []int64{}
			return res, nil
		}
		if !inc.live {
			f, err := s.withdraw(ctx, p, *inc)
			res.FollowUp = f
			return res, err
		}
	}
	post, warnings, err := s.capMessage(ctx, p, a, inc)
	if err != nil {
		return CAPResult{}, err
	}
	res.Warnings = append(res.Warnings, warnings...)
	post.Exercise, post.MsgType = exercise, res.MsgType
	if post.Alert, err = json.Marshal(a); err != nil {
		return CAPResult{}, err
	}
	if !a.Sent.IsZero() {
		sent := a.Sent
		post.OriginSentAt = &sent
	}
	if inc != nil {
		res.FollowUp, err = s.followUp(ctx, p, *inc, res.MsgType, post)
		return res, err
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
	res.IncidentID = res.Post.IncidentID
	return res, nil
}

// referencedIncident finds the incident a CAP Update or Cancel follows up,
// through the first of its references crier sent, and lists those it never
// sent. Feeds' updates sometimes name themselves among the references.
func (s *Service) referencedIncident(ctx context.Context, p crier.Principal, a *cap.Alert) (*incident, []string, error) {
	if a.MsgType == "Alert" {
		return nil, nil, nil
	}
	self := capExternalID(a.Sender, a.Identifier, a.Sent)
	var found *incident
	var unknown []string
	for _, ref := range a.References {
		ext := capExternalID(ref.Sender, ref.Identifier, ref.Sent)
		if ext == self {
			continue
		}
		id, err := s.db.PostIDByExternalID(ctx, p.PublisherID(), ext)
		if errors.Is(err, storage.ErrNotFound) {
			unknown = append(unknown, ref.Sender+","+ref.Identifier+","+ref.Sent.Format(time.RFC3339))
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		if found != nil {
			continue
		}
		inc, err := s.findIncident(ctx, p, id)
		if e := crier.AsError(err); e != nil && e.Code == crier.ECONFLICT {
			// The incident is over: a feed that sends its Cancel again
			// finds the Cancel's post by its own identity before this.
			return nil, nil, crier.Errorf(crier.ECONFLICT, "alert.references", "%s", e.Message)
		}
		if e := crier.AsError(err); e != nil && e.Field == "id" {
			continue // an emergency post that is no alert
		}
		if err != nil {
			return nil, nil, err
		}
		found = &inc
	}
	return found, unknown, nil
}

// sendable refuses what is not for residents or their test devices: only
// Public messages of status Actual (residents), Exercise or Test (test
// devices) and of type Alert, Update or Cancel are sent, and a Cancel must
// say what it cancels.
func sendable(a *cap.Alert) error {
	switch {
	case a.Status != "Actual" && a.Status != "Exercise" && a.Status != "Test":
		return crier.Invalid("alert.status", "%s alerts are not sent; Actual ones are, and Exercise and Test ones to test devices", a.Status)
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

// capMessage makes the post of a CAP message, all but its place in the
// incident: its text from its info blocks (the first its own, the others
// its translations; a Cancel without any gets the all-clear), its area
// from theirs (a Cancel keeps the incident's).
func (s *Service) capMessage(ctx context.Context, p crier.Principal, a *cap.Alert, inc *incident) (storage.Post, []string, error) {
	ext := capExternalID(a.Sender, a.Identifier, a.Sent)
	if a.MsgType == "Cancel" && len(a.Infos) == 0 {
		post, err := s.allClear(p, *inc, ext)
		if err != nil {
			return storage.Post{}, nil, err
		}
		post.Segment = inc.latest.Segment
		return post, nil, nil
	}
	if len(a.Infos) == 0 {
		return storage.Post{}, nil, crier.Invalid("alert.info", "an alert needs an info block to be sent")
	}
	post, err := s.capPost(p, a, 0)
	if err != nil {
		return storage.Post{}, nil, err
	}
	post.Exercise = a.Status != "Actual"
	textWarnings, err := capTexts(a, &post)
	if err != nil {
		return storage.Post{}, nil, err
	}
	// A block without an expiry takes the latest of the others': feeds
	// often give it in one language only.
	for _, in := range a.Infos {
		if post.ExpiresAt == nil || in.Expires.After(*post.ExpiresAt) {
			if !in.Expires.IsZero() {
				at := in.Expires
				post.ExpiresAt = &at
			}
		}
	}
	if a.MsgType == "Cancel" {
		post.Segment = inc.latest.Segment
		return post, textWarnings, nil
	}
	seg, warnings, err := s.capArea(ctx, p, a)
	if err != nil {
		return storage.Post{}, nil, err
	}
	post.Segment = seg
	return post, append(textWarnings, warnings...), nil
}

// capArea is where a CAP Alert or Update goes: every device located in one
// of the areas of its info blocks (all of them, so that no language's area
// is missed), checked against the tenant's territory.
func (s *Service) capArea(ctx context.Context, p crier.Principal, a *cap.Alert) ([]byte, []string, error) {
	seg, warnings, err := s.capSegment(ctx, p.TenantID, a.Infos)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkAlertArea(ctx, p, seg); err != nil {
		return nil, nil, err
	}
	return seg, warnings, nil
}

// capPost makes the emergency post of a CAP alert's info block i, all but
// its audience (capSegment).
func (s *Service) capPost(p crier.Principal, a *cap.Alert, i int) (storage.Post, error) {
	in := a.Infos[i]
	path := fmt.Sprintf("alert.info[%d]", i)
	r := PostRequest{Class: string(crier.ClassEmergency), ExternalID: capExternalID(a.Sender, a.Identifier, a.Sent)}
	if validLink(in.Web) {
		r.URL = in.Web
	}
	// Shortened rather than refused when its payload outgrows the
	// providers' 4 KB (what is still too long is validatePost's to refuse).
	lang, _ := crier.CanonicalLanguage(in.Language)
	t, _ := fitText(storage.Post{URL: r.URL, Class: crier.ClassEmergency}, lang, capText(in))
	r.Title, r.Body = t.Title, t.Body
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

// capSegment is the audience of a CAP message: every device located in one
// of its info blocks' areas' polygons or circles (each language's block
// usually repeats the same areas: once is enough). The polygons are united and repaired in
// PostGIS first: real feeds send areas that overlap or share borders, and
// rings that cross themselves. Polygons of more positions than a segment
// holds are simplified to fit, and grown so that they still cover the whole
// area: an alert may reach a little beyond its area, never fall short of it.
// The warning says so.
func (s *Service) capSegment(ctx context.Context, tenantID int64, infos []cap.Info) (seg []byte, warnings []string, err error) {
	var polygons geojson.MultiPolygon
	var leaves []any
	// Errors of the whole name the first block with areas.
	path := ""
	seen, seenPolygon, seenArea := map[cap.Circle]bool{}, map[string]bool{}, map[string]bool{}
	var unplaced []string
	for i, in := range infos {
		if len(in.Areas) > 0 && path == "" {
			path = fmt.Sprintf("alert.info[%d]", i)
		}
		for j, area := range in.Areas {
			if len(area.Polygons) == 0 && len(area.Circles) == 0 && len(area.Geocodes) > 0 {
				// Placed through the tenant's areas that carry one of
				// its codes (a kommunenummer, an EMMA_ID).
				slugs, err := s.areasByGeocode(ctx, tenantID, area.Geocodes)
				if err != nil {
					return nil, nil, err
				}
				if len(slugs) == 0 {
					// Another municipality's region, most likely: the
					// alert goes where it can be placed.
					unplaced = append(unplaced, fmt.Sprintf("alert.info[%d].area[%d]: its geocodes (%s) name none of the "+
						"tenant's areas", i, j, geocodeList(area.Geocodes)))
					continue
				}
				for _, slug := range slugs {
					if !seenArea[slug] {
						seenArea[slug] = true
						leaves = append(leaves, map[string]string{"area": slug})
					}
				}
				continue
			}
			for _, pg := range area.Polygons {
				if key := fmt.Sprint(pg); !seenPolygon[key] {
					seenPolygon[key] = true
					polygons = append(polygons, pg)
				}
			}
			for k, c := range area.Circles {
				if c.RadiusM < 1 || c.RadiusM > MaxAlertRadiusM {
					return nil, nil, crier.Invalid(fmt.Sprintf("alert.info[%d].area[%d].circle[%d]", i, j, k),
						"a radius of %g km: crier sends to circles of 1 m to %d km; use a polygon", c.RadiusM/1000, MaxAlertRadiusM/1000)
				}
				if seen[c] {
					continue // the same area in another language
				}
				seen[c] = true
				leaves = append(leaves, map[string]any{"near": map[string]float64{"lat": c.Lat, "lon": c.Lon, "radius_m": c.RadiusM}})
			}
		}
	}
	path = cmp.Or(path, "alert.info[0]")
	if len(polygons) > 0 {
		united, tolerance, err := s.db.UnionPolygons(ctx, polygons.JSON(), segments.MaxVertices)
		var ae *storage.AreaError
		if errors.As(err, &ae) {
			return nil, nil, crier.Invalid(path+".area", "%s", ae.Reason)
		}
		if err != nil {
			return nil, nil, err
		}
		if tolerance > 0 {
			warnings = append(warnings, fmt.Sprintf("%s.area: %d positions in its polygons, more than the %d an audience holds: simplified, "+
				"and grown by up to %.0f m to cover the whole area", path, polygons.Vertices(), segments.MaxVertices,
				tolerance*111_320))
		}
		leaves = append(leaves, map[string]json.RawMessage{"within": united})
	}
	if len(leaves) == 0 && len(unplaced) > 0 {
		field, msg, _ := strings.Cut(unplaced[0], ": ")
		return nil, nil, crier.Invalid(field, "%s: import areas with those codes (PUT /v1/areas), or send a polygon or circle", msg)
	}
	if len(leaves) == 0 {
		return nil, nil, crier.Invalid(path+".area", "no polygon or circle to send to: crier finds residents by coordinates")
	}
	for _, u := range unplaced {
		warnings = append(warnings, u+": not sent there")
	}
	raw, err := json.Marshal(map[string]any{"or": leaves})
	if err != nil {
		return nil, nil, err
	}
	e, err := segments.Parse(raw, segments.Options{})
	if err != nil {
		msg := err.Error()
		if ce := crier.AsError(err); ce != nil {
			msg = ce.Message
		}
		return nil, nil, crier.Invalid(path+".area", "%s", msg)
	}
	seg, err = json.Marshal(e)
	return seg, warnings, err
}

// areasByGeocode finds the tenant's areas that carry one of the geocodes.
func (s *Service) areasByGeocode(ctx context.Context, tenantID int64, codes []cap.Value) ([]string, error) {
	gs := make([]storage.Geocode, len(codes))
	for i, c := range codes {
		gs[i] = storage.Geocode(c)
	}
	return s.db.AreasByGeocode(ctx, tenantID, gs)
}

// geocodeList shows geocodes as name=value, a few at most.
func geocodeList(codes []cap.Value) string {
	var parts []string
	for i, c := range codes {
		if i == 5 {
			parts = append(parts, fmt.Sprintf("and %d more", len(codes)-i))
			break
		}
		parts = append(parts, c.Name+"="+c.Value)
	}
	return strings.Join(parts, ", ")
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

// truncate shortens s to at most n characters, ending with an ellipsis when
// it cuts.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}
