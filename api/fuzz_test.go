package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crier-push/crier/cap"
	"github.com/crier-push/crier/storage"
)

// checkRejection asserts what every rejection must be: an *Error with a 4xx
// status, a code and a message.
func checkRejection(t *testing.T, err error) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("rejection %v (%T) is not an *api.Error", err, err)
	}
	if ae.Status < 400 || ae.Status > 499 || ae.Code == "" || ae.Message == "" {
		t.Fatalf("rejection %+v: want a 4xx with code and message", ae)
	}
}

func decodeBytes(body []byte, v any) error {
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return decode(httptest.NewRecorder(), r, v)
}

// FuzzPostBody feeds arbitrary bodies to POST /v1/posts' decoding and
// validation: no panic, and every rejection is a clear 4xx.
func FuzzPostBody(f *testing.F) {
	for _, seed := range []string{
		`{"feed":"fotball","title":"Kamp","body":"Søndag 18:00","url":"https://example.org","data":{"a":"b"},"tags":["fotball"]}`,
		`{"feed":"x","title":"t","body":"b","class":"emergency","publish_at":"2026-12-01T18:00:00Z","expires_at":"2026-12-02T18:00:00+01:00"}`,
		`{"feed":"x","title":"t","body":"b","data":{"from":"x","google.a":"y"}}`,
		`{"title":5}`, `[]`, `{}`, `{"feed":"x"} {}`, `{"titel":"x"}`, `{"title":"\u0000"}`, "",
	} {
		f.Add([]byte(seed))
	}
	s := &Server{now: func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) }}
	f.Fuzz(func(t *testing.T, body []byte) {
		var b postBody
		if err := decodeBytes(body, &b); err != nil {
			checkRejection(t, err)
			return
		}
		for _, role := range []string{storage.RoleMunicipality, storage.RoleOrganisation} {
			if _, err := s.validatePost(b, &storage.Publisher{Role: role}); err != nil {
				checkRejection(t, err)
			}
		}
	})
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
	s := &Server{}
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

// FuzzCAPAlert feeds arbitrary bodies to POST /v1/alerts' CAP reading and
// the making of its post (all but the audience, which needs PostGIS): no
// panic, every rejection a clear 4xx, and every accepted alert a post
// within the bounds of any other, however long its texts or wide their
// characters.
func FuzzCAPAlert(f *testing.F) {
	files, _ := filepath.Glob("../cap/testdata/*.xml")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	now := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC) // before the fixtures expire
	s := &Server{now: func() time.Time { return now }}
	muni := &storage.Publisher{Role: storage.RoleMunicipality}
	f.Fuzz(func(t *testing.T, body []byte) {
		a, err := cap.Parse(body)
		if err != nil {
			return // cap's own fuzz test holds its errors
		}
		i, ok := chooseInfo(a.Infos)
		if !ok {
			return
		}
		post, err := s.capPost(a, i, muni)
		if err != nil {
			checkRejection(t, err)
			return
		}
		if _, err := s.validatePost(postBody{Title: post.Title, Body: post.Body, URL: post.URL, Class: post.Class,
			ExternalID: post.ExternalID}, muni); err != nil {
			t.Fatalf("the post of an accepted alert does not validate again: %v", err)
		}
	})
}
