package api

import (
	"testing"
	"time"
)

// FuzzReceiptsBody feeds arbitrary bodies to the receipts' parser: every
// body is taken or refused with a 4xx, and what is taken is 1 to 50
// receipts of real post ids with times no later than now.
func FuzzReceiptsBody(f *testing.F) {
	for _, seed := range []string{
		`{"post_id": 7}`, `{"post_id": 7, "received_at": "2025-03-01T12:00:00.123Z", "displayed_at": "2025-03-01T12:00:01+01:00"}`,
		`{"receipts": [{"post_id": 1}, {"post_id": 2, "displayed_at": "2999-01-01T00:00:00Z"}]}`,
		`{"receipts": []}`, `{"post_id": -1}`, `{"post_id": 1e3}`, `{"post_id": 7, "receipts": null}`,
		`{"received_at": "x"}`, `[]`, `null`, `{"post_id": 7}{}`,
	} {
		f.Add([]byte(seed))
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, body []byte) {
		rs, err := parseReceipts(body, now)
		if err != nil {
			checkRejection(t, err)
			return
		}
		if len(rs) < 1 || len(rs) > maxReceipts {
			t.Fatalf("%q: took %d receipts", body, len(rs))
		}
		for _, r := range rs {
			if r.PostID <= 0 || r.ReceivedAt.IsZero() || r.ReceivedAt.After(now) || r.DisplayedAt.After(now) {
				t.Fatalf("%q: took %+v", body, r)
			}
		}
	})
}
