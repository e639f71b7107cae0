package api

import (
	"mime"
	"net/http"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/publish"
)

// previewAlert is POST /v1/alerts/preview: the body of POST /v1/alerts
// (JSON, or CAP 1.2 by its Content-Type), answered with the area's size,
// how many devices it would reach now and whether it meets the tenant's
// territory. Nothing is stored or sent; an area that sending would refuse
// is answered 200 with the refusal.
func (s *Server) previewAlert(w http.ResponseWriter, r *http.Request) error {
	p := principal(r.Context())
	var a publish.AlertArea
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "application/cap+xml", "application/xml", "text/xml":
		raw, err := readBody(w, r, cap.MaxSize)
		if err != nil {
			return err
		}
		if a, err = s.pub.PreviewCAPAlert(r.Context(), p, raw); err != nil {
			return err
		}
	case "", "application/json":
		var b publish.AlertRequest
		if err := decode(w, r, &b); err != nil {
			return err
		}
		var err error
		if a, err = s.pub.PreviewAlert(r.Context(), p, b); err != nil {
			return err
		}
	default:
		return crier.Errorf(crier.EUNSUPPORTED, "", "Content-Type must be application/json or, for CAP 1.2, application/cap+xml")
	}
	writeJSON(w, http.StatusOK, a)
	return nil
}
