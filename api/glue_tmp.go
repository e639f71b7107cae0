package api

import (
	"net/http"
	"strings"

	"github.com/crier-push/crier"
)

// TEMPORARY until the CAP writer lands.
func (s *Server) writeAlertCAP(w http.ResponseWriter, r *http.Request, id int64) error {
	return crier.Errorf(crier.EUNSUPPORTED, "", "not yet")
}

func splitAccept(v string) []string {
	var out []string
	for _, part := range strings.Split(v, ",") {
		mt, _, _ := strings.Cut(part, ";")
		out = append(out, strings.TrimSpace(strings.ToLower(mt)))
	}
	return out
}
