package publish

import (
	"context"
	"strconv"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/segments"
	"github.com/crier-push/crier/storage"
)

// AlertArea is where an alert would go, held against the tenant's
// territory (the union of its areas) before it is sent: a polygon typed
// with latitude and longitude swapped, or a feed's alert for another
// county, lands outside it and is refused (Check) with what it would have
// done.
type AlertArea struct {
	// AreaKM2 is the area's size on the WGS84 spheroid; InsideKM2, in a
	// preview, how much of it lies in the territory.
	AreaKM2   float64 `json:"area_km2"`
	InsideKM2 float64 `json:"inside_km2"`
	// Audience is how many devices the alert would reach now, as an
	// emergency: whatever they chose, mutes and quiet hours included.
	Audience int `json:"audience"`
	Android  int `json:"android"`
	IOS      int `json:"ios"`
	// InTerritory: the area's interior overlaps one of the tenant's areas.
	// One that only touches the territory along a border (a neighbouring
	// municipality's polygon) does not.
	InTerritory bool `json:"in_territory"`
	// TenantHasTerritory: the tenant has areas. Without any, nothing is
	// refused: there is nothing to hold the area against.
	TenantHasTerritory bool `json:"tenant_has_territory"`
	// Refusal, in a preview, is what sending the alert would answer: Check's
	// message.
	Refusal string `json:"refusal,omitempty"`
	// Warnings say what a preview noticed short of refusing: a tenant
	// without areas, a CAP area that had to be simplified.
	Warnings []string `json:"warnings,omitempty"`
}

// NoTerritory is a preview's warning for a tenant without areas.
const NoTerritory = "the tenant has no areas (POST /v1/areas): the alert's area is not checked against a territory"

// previewed fills in what a preview says beyond the facts.
func (a AlertArea) previewed() AlertArea {
	if err := a.Check(); err != nil {
		a.Refusal = err.Error()
	}
	if !a.TenantHasTerritory {
		a.Warnings = append(a.Warnings, NoTerritory)
	}
	return a
}

// Check refuses an area outside the tenant's territory, saying its size
// and audience so that the sender sees what went wrong. A tenant without
// areas has no territory, and every area passes.
func (a AlertArea) Check() error {
	if !a.TenantHasTerritory || a.InTerritory {
		return nil
	}
	devices := "devices"
	if a.Audience == 1 {
		devices = "device"
	}
	return crier.Invalid("area", "meets none of the tenant's areas (GET /v1/areas): %s km², %d %s now; "+
		"check the coordinates (GeoJSON positions are [longitude, latitude], CAP's latitude,longitude)",
		formatKM2(a.AreaKM2), a.Audience, devices)
}

// formatKM2 keeps three significant figures below 100 km², whole square
// kilometres above.
func formatKM2(km2 float64) string {
	if km2 >= 100 {
		return strconv.FormatFloat(km2, 'f', 0, 64)
	}
	return strconv.FormatFloat(km2, 'g', 3, 64)
}

// AlertArea measures an alert's audience, a stored (normalised) segment
// as CreateAlert and capSegment build it, and holds it against the
// tenant's territory, for Check before the alert is saved. Audience counts
// what the dispatcher would snapshot for a real alert now; InsideKM2 is
// left 0 (previews measure it).
func (s *Service) AlertArea(ctx context.Context, p crier.Principal, seg []byte) (AlertArea, error) {
	return s.alertArea(ctx, p, seg, false)
}

func (s *Service) alertArea(ctx context.Context, p crier.Principal, seg []byte, measureInside bool) (AlertArea, error) {
	if err := p.MaySendAlerts(); err != nil {
		return AlertArea{}, err
	}
	e, err := segments.Parse(seg, segments.Options{Root: "area"})
	if err != nil {
		return AlertArea{}, err
	}
	g, ok := storage.CompileGeometry(e)
	if !ok {
		return AlertArea{}, crier.Invalid("area", "names no place: an alert is for an area")
	}
	f, err := s.db.AlertArea(ctx, p.TenantID, g, measureInside)
	if err != nil {
		return AlertArea{}, err
	}
	// The municipality's segment is the whole audience (segments.Audience),
	// and an emergency ignores mutes: the feed does not matter.
	aud := segments.AudienceOf(segments.Post{}, nil, e)
	c, err := s.db.CountAudience(ctx, p.TenantID, 0, storage.CompileAudience(aud, segments.Why{}), true)
	if err != nil {
		return AlertArea{}, err
	}
	return AlertArea{AreaKM2: f.KM2, InsideKM2: f.InsideKM2, Audience: c.Total, Android: c.Android, IOS: c.IOS,
		InTerritory: f.InTerritory, TenantHasTerritory: f.HasTerritory}, nil
}

// previewAllowed spends one of the publisher's previews (Config.PreviewLimit).
func (s *Service) previewAllowed(ctx context.Context, p crier.Principal) error {
	wait, err := s.cfg.PreviewLimit.Allow(ctx, "preview:"+strconv.FormatInt(p.PublisherID(), 10))
	if err != nil {
		return err
	}
	if wait > 0 {
		return &crier.Error{Code: crier.ETOOMANY, Message: "too many previews: try again later", RetryAfter: wait}
	}
	return nil
}

// PreviewAlert is AlertArea for a JSON alert's area, before it is sent:
// nothing is stored, and an area outside the territory is answered, not
// refused. It spends one of the publisher's previews.
func (s *Service) PreviewAlert(ctx context.Context, p crier.Principal, r AlertRequest) (AlertArea, error) {
	if err := p.MaySendAlerts(); err != nil {
		return AlertArea{}, err
	}
	if err := s.previewAllowed(ctx, p); err != nil {
		return AlertArea{}, err
	}
	if isNull(r.Area) {
		return AlertArea{}, crier.Invalid("area", "is required: where the alert is for")
	}
	_, seg, err := s.parseExpr(ctx, p.TenantID, r.Area, "area", segments.Options{}, segments.ParseTarget)
	if err != nil {
		return AlertArea{}, err
	}
	a, err := s.alertArea(ctx, p, seg, true)
	if err != nil {
		return AlertArea{}, err
	}
	return a.previewed(), nil
}

// PreviewCAPAlert is AlertArea for a CAP Alert's or Update's areas (all of
// its info blocks', as capSegment takes them). A Cancel has no area of its
// own: it goes to everyone its incident reached.
func (s *Service) PreviewCAPAlert(ctx context.Context, p crier.Principal, raw []byte) (AlertArea, error) {
	if err := p.MaySendAlerts(); err != nil {
		return AlertArea{}, err
	}
	if err := s.previewAllowed(ctx, p); err != nil {
		return AlertArea{}, err
	}
	a, err := cap.Parse(raw)
	if err != nil {
		return AlertArea{}, err
	}
	if a.MsgType == "Cancel" {
		return AlertArea{}, crier.Invalid("alert.msgType", "a Cancel goes to everyone its incident reached: it has no area to preview")
	}
	seg, warnings, err := s.capSegment(ctx, p.TenantID, a.Infos)
	if err != nil {
		return AlertArea{}, err
	}
	out, err := s.alertArea(ctx, p, seg, true)
	if err != nil {
		return AlertArea{}, err
	}
	out.Warnings = append(append(out.Warnings, a.Warnings...), warnings...)
	return out.previewed(), nil
}

// checkAlertArea refuses an alert whose area meets none of the tenant's
// areas (AlertArea.Check).
func (s *Service) checkAlertArea(ctx context.Context, p crier.Principal, seg []byte) error {
	a, err := s.AlertArea(ctx, p, seg)
	if err != nil {
		return err
	}
	return a.Check()
}
