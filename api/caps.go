package api

import (
	"net/http"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/publish"
	"github.com/crier-push/crier/storage"
)

// limitsJSON is a publisher's caps as GET and PUT
// /v1/publishers/{slug}/limits show them.
type limitsJSON struct {
	Publisher string `json:"publisher"`
	// DailyPosts and DailyPushesPerDevice are as the municipality set
	// them: null is the tenant's default (DefaultDailyPosts) and no limit.
	DailyPosts           *int `json:"daily_posts"`
	DailyPushesPerDevice *int `json:"daily_pushes_per_device"`
	DefaultDailyPosts    int  `json:"default_daily_posts"`
	// Posts is what the post limit in force leaves the publisher now.
	Posts allowanceJSON `json:"posts"`
}

type allowanceJSON struct {
	Limit       int     `json:"limit"`
	WindowHours float64 `json:"window_hours"`
	Sent        int     `json:"sent"`
	Left        int     `json:"left"`
	// NextAt, when none is left, is when the next post may go.
	NextAt *time.Time `json:"next_at"`
}

func limitsView(l publish.Limits) limitsJSON {
	a := l.Posts
	return limitsJSON{Publisher: l.Publisher, DailyPosts: l.DailyPosts, DailyPushesPerDevice: l.DailyPushesPerDevice,
		DefaultDailyPosts: l.TenantDailyPosts,
		Posts: allowanceJSON{Limit: a.Limit, WindowHours: crier.PostWindow.Hours(), Sent: a.Used, Left: a.Left(),
			NextAt: a.FreeAt}}
}

// getLimits is GET /v1/publishers/{slug}/limits: an organisation's caps
// and how many posts it has left, for the municipality or the organisation
// itself.
func (s *Server) getLimits(w http.ResponseWriter, r *http.Request) error {
	l, err := s.pub.Limits(r.Context(), principal(r.Context()), r.PathValue("slug"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, limitsView(l))
	return nil
}

// putLimits is PUT /v1/publishers/{slug}/limits: the municipality sets an
// organisation's caps.
func (s *Server) putLimits(w http.ResponseWriter, r *http.Request) error {
	var b publish.LimitsRequest
	if err := decode(w, r, &b); err != nil {
		return err
	}
	l, err := s.pub.SetLimits(r.Context(), principal(r.Context()), r.PathValue("slug"), b)
	if err != nil {
		return err
	}
	s.audit(r, storage.Event{Action: storage.AuditLimitsSet, Object: l.Publisher, Detail: map[string]any{
		"daily_posts": l.DailyPosts, "daily_pushes_per_device": l.DailyPushesPerDevice}})
	writeJSON(w, http.StatusOK, limitsView(l))
	return nil
}
