package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// checkRejection asserts what every rejection must be: answered with a
// 4xx, a code and a message.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	ae := classify(err, slog.New(slog.DiscardHandler))
	if ae.Status < 400 || ae.Status > 499 || ae.Code == "" || ae.Message == "" {
		t.Fatalf("rejection %v: answered %+v, want a 4xx with code and message", err, ae)
	}
}

func decodeBytes(body []byte, v any) error {
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return decode(httptest.NewRecorder(), r, v)
}

// FuzzDeviceBody feeds arbitrary bodies to PUT /v1/devices' decoding and
// the validation that needs no database.
func FuzzDeviceBody(f *testing.F) {
	for _, seed := range []string{
		`{"provider":"fcm","token":"emu-ok-1","locale":"nb","time_zone":"Europe/Oslo","interests":["kultur"],"places":[{"name":"home","lat":59.1,"lon":10.2}],"quiet_hours":{"start":"22:00","end":"07:00"}}`,
		`{"provider":"apns","token":"e1e1010000000000000000000000000000000000000000000000000000000001"}`,
		`{"quiet_hours":null}`, `{"quiet_hours":{"start":"25:00","end":"x"}}`, `{"places":[{"lat":91}]}`,
		`{"provider":"fcm","platform":"ios"}`, `{"time_zone":"Mars/Olympus"}`, `{"token":" "}`, `nul`,
	} {
		f.Add([]byte(seed))
	}
	// The time zone is looked up in the database's.
	s := &Server{db: testenv.DB(f)}
	f.Fuzz(func(t *testing.T, body []byte) {
		var b deviceBody
		if err := decodeBytes(body, &b); err != nil {
			checkRejection(t, err)
			return
		}
		// Slug lists are resolved in the database; the rest is checked here.
		b.Follows, b.Mutes, b.Areas = nil, nil, nil
		d := storage.Device{Provider: "fcm", Platform: "android", Token: "emu-ok-1"}
		r := httptest.NewRequest(http.MethodPut, "/", nil)
		if err := s.mergeDevice(r, &d, b); err != nil {
			checkRejection(t, err)
		}
	})
}
