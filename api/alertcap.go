package api

import (
	"net/http"
	"strings"

	"github.com/crier-push/crier/cap"
)

// writeAlertCAP answers GET /v1/alerts/{id} with the message as CAP 1.2.
func (s *Server) writeAlertCAP(w http.ResponseWriter, r *http.Request, id int64) error {
	a, err := s.pub.AlertAsCAP(r.Context(), principal(r.Context()), id)
	if err != nil {
		return err
	}
	raw, err := cap.Marshal(a)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/cap+xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(raw)
	return err
}

// splitAccept lists the media types of an Accept header, in its order.
func splitAccept(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		mt, _, _ := strings.Cut(part, ";")
		out = append(out, strings.TrimSpace(strings.ToLower(mt)))
	}
	return out
}
