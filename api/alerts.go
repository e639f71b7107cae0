package api

import (
	"mime"
	"net/http"

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
		writeJSON(w, createdStatus(c.New), postCreated(c))
		return nil
	}
	return crier.Errorf(crier.EUNSUPPORTED, "", "Content-Type must be application/json or, for CAP 1.2, application/cap+xml")
}

func writeCAPResult(w http.ResponseWriter, res publish.CAPResult) {
	var out map[string]any
	status := http.StatusOK
	if res.Cancel != nil {
		out = cancelledJSON(*res.Cancel)
	} else {
		out = postCreated(res.Created)
		out["info"] = res.Info
		if res.Replaced != nil {
			out["replaced"] = cancelledJSON(*res.Replaced)
		}
		status = createdStatus(res.New)
	}
	if len(res.Warnings) > 0 {
		out["warnings"] = res.Warnings
	}
	writeJSON(w, status, out)
}

func cancelledJSON(c publish.Cancelled) map[string]any {
	out := map[string]any{"cancelled_posts": c.Posts, "cancelled": c.Sends}
	if len(c.Unknown) > 0 {
		out["unknown_references"] = c.Unknown
	}
	return out
}
