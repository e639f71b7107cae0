package publish

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/geojson"
	"github.com/crier-push/crier/storage"
)

// AlertAsCAP is a message of an incident as CAP 1.2 (cap.Marshal), so that
// regional systems can take in what crier sent: a CAP message as it came,
// and a JSON one in CAP's terms, its identity crier's (sender
// crier@<tenant>, identifier crier-<tenant>-<post id>), its references the
// incident's earlier messages, one info block per language and its area's
// polygons and circles.
func (s *Service) AlertAsCAP(ctx context.Context, p crier.Principal, id int64) (*cap.Alert, error) {
	post, err := s.visiblePost(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if post.IncidentID == 0 {
		return nil, crier.Invalid("id", "post %d is no alert", id)
	}
	raw, err := s.db.PostAlert(ctx, p.TenantID, id)
	if err != nil {
		return nil, err
	}
	if raw != nil {
		var a cap.Alert
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, fmt.Errorf("alert %d: stored CAP: %w", id, err)
		}
		a.Warnings = nil
		return &a, nil
	}
	tenant, err := s.db.TenantByID(ctx, p.TenantID)
	if err != nil {
		return nil, err
	}
	msgs, err := s.db.Incident(ctx, p.TenantID, post.IncidentID)
	if err != nil {
		return nil, err
	}
	a := capIdentity(tenant.Slug, post)
	a.Status = map[bool]string{true: "Exercise", false: "Actual"}[post.Exercise]
	a.MsgType = map[crier.MsgType]string{crier.MsgAlert: "Alert", crier.MsgUpdate: "Update", crier.MsgCancel: "Cancel"}[post.MsgType]
	a.Scope = "Public"
	for _, m := range msgs {
		if m.ID >= post.ID {
			break
		}
		e := capIdentity(tenant.Slug, m)
		if mraw, err := s.db.PostAlert(ctx, p.TenantID, m.ID); err == nil && mraw != nil {
			var ma cap.Alert
			if json.Unmarshal(mraw, &ma) == nil {
				e.Sender, e.Identifier, e.Sent = ma.Sender, ma.Identifier, ma.Sent
			}
		}
		a.References = append(a.References, cap.Reference{Sender: e.Sender, Identifier: e.Identifier, Sent: e.Sent})
	}
	areas, err := capAreas(post.Segment)
	if err != nil {
		return nil, fmt.Errorf("alert %d: %w", id, err)
	}
	info := func(lang string, t crier.Text) cap.Info {
		in := cap.Info{Language: lang, Categories: []string{"Safety"}, Event: t.Title, Urgency: "Immediate",
			Severity: "Unknown", Certainty: "Unknown", Headline: t.Title, Description: t.Body, Web: post.URL,
			SenderName: tenant.Name, Areas: areas}
		if post.MsgType == crier.MsgCancel {
			in.Urgency, in.ResponseTypes = "Past", []string{"AllClear"}
		}
		if post.ExpiresAt != nil {
			in.Expires = *post.ExpiresAt
		}
		return in
	}
	a.Infos = append(a.Infos, info(cmp.Or(post.Language, post.TenantLanguage), crier.Text{Title: post.Title, Body: post.Body}))
	langs := make([]string, 0, len(post.Translations))
	for l := range post.Translations {
		langs = append(langs, l)
	}
	slices.Sort(langs)
	for _, l := range langs {
		a.Infos = append(a.Infos, info(l, post.Translations[l]))
	}
	return &a, nil
}

// capIdentity is crier's CAP identity of a JSON message.
func capIdentity(tenant string, m storage.Post) cap.Alert {
	return cap.Alert{Sender: "crier@" + tenant, Identifier: "crier-" + tenant + "-" + strconv.FormatInt(m.ID, 10),
		Sent: m.CreatedAt.Truncate(1e9)}
}

// capAreas is an alert's segment (an "or" of within, near and area leaves,
// as publish stores them) as CAP areas: polygons, circles, and a named area
// by its slug in the area description and a "crier-area" geocode.
func capAreas(seg []byte) ([]cap.Area, error) {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(seg, &root); err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	var areas []cap.Area
	var walk func(n map[string]json.RawMessage) error
	walk = func(n map[string]json.RawMessage) error {
		for key, v := range n {
			switch key {
			case "or":
				var kids []map[string]json.RawMessage
				if err := json.Unmarshal(v, &kids); err != nil {
					return err
				}
				for _, k := range kids {
					if err := walk(k); err != nil {
						return err
					}
				}
			case "within":
				mp, err := geojson.ParseGeometry(v, "within")
				if err != nil {
					return err
				}
				areas = append(areas, cap.Area{Desc: "Alert area", Polygons: mp})
			case "near":
				var c struct {
					Lat, Lon float64
					RadiusM  float64 `json:"radius_m"`
				}
				if err := json.Unmarshal(v, &c); err != nil {
					return err
				}
				areas = append(areas, cap.Area{Desc: "Alert area", Circles: []cap.Circle{{Lat: c.Lat, Lon: c.Lon, RadiusM: c.RadiusM}}})
			case "area":
				var slug string
				if err := json.Unmarshal(v, &slug); err != nil {
					return err
				}
				areas = append(areas, cap.Area{Desc: slug, Geocodes: []cap.Value{{Name: "crier-area", Value: slug}}})
			}
		}
		return nil
	}
	return areas, walk(root)
}
