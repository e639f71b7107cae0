package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
)

// TestSmallPostNotHeldBehindBig: the band's post to its 40 followers,
// published while the football club's post to 6,000 is sending, takes its
// turn in the community queue: all 40 pushes are out while the big post is
// still in flight, after at most a few turns of its sends, not behind all
// of them. Without turns the 40 would wait behind the big post's whole
// backlog (more than 4,000 of its pushes in between).
func TestSmallPostNotHeldBehindBig(t *testing.T) {
	if testing.Short() {
		t.Skip("6,000 sends: not in -short")
	}
	t.Parallel()
	const ahead, big, small = 200, 6000, 40
	s := newStackOpts(t, server.Config{QueueAhead: ahead}, emulator.Config{Latency: 20 * time.Millisecond})
	ctx := context.Background()
	var bandID int64
	if err := s.db.Pool.QueryRow(ctx, `SELECT id FROM publishers WHERE tenant_id = $1 AND slug = 'korpset'`,
		s.tenant.ID).Scan(&bandID); err != nil {
		t.Fatal(err)
	}
	club := s.feed(t, s.Org, "fotball", "Fotball", false)
	band := s.feed(t, crier.Publisher{ID: bandID}, "konserter", "Konserter", false)
	fans := s.insertDevices("fan", big, []int64{club.ID})
	listeners := s.insertDevices("lytter", small, []int64{band.ID})
	isFan, isListener := set(fans), set(listeners)
	countFans := func(until time.Time) (n int) {
		for _, r := range s.emu.Records() {
			if isFan[r.Token] && !r.Time.After(until) {
				n++
			}
		}
		return n
	}

	bigID := s.post(s.OrgKey, map[string]any{"feed": "fotball", "title": "Kampdag", "body": "Kom på kampen!"})
	eventually(t, time.Minute, func() error {
		if n := countFans(time.Now()); n < 500 {
			return errNotYet
		}
		return nil
	})
	var created struct{ ID int64 }
	accepted := time.Now()
	if code := s.do("POST", "/v1/posts", s.OtherKey, map[string]any{"feed": "konserter", "title": "Konsert",
		"body": "Vårkonsert i kveld."}, &created); code != http.StatusAccepted {
		t.Fatalf("the band's post: %d", code)
	}
	if st := s.waitDone(s.MuniKey, created.ID); st.Counts["sent"] != small {
		t.Fatalf("the band's post: %v, want %d sent", st.Counts, small)
	}
	var last time.Time
	got := 0
	for _, r := range s.emu.Records() {
		if isListener[r.Token] {
			got++
			last = r.Time
		}
	}
	before, during := countFans(accepted), countFans(last)
	t.Logf("the band's 40 pushes: last %s after its post was accepted; the club's pushes meanwhile: %d (%d before, %d of %d after)",
		last.Sub(accepted), during-before, before, big-during, big)
	if got != small {
		t.Fatalf("%d pushes to the band's listeners, want %d", got, small)
	}
	if during >= big {
		t.Errorf("the club's post was done (%d pushes) before the band's: not sent while the big post was in flight", during)
	}
	// The band waits for the sends queued ahead of it, a turn of the
	// club's, the sends in flight, and (under load) a few turns more.
	if meanwhile, most := during-before, 4*ahead+1000; meanwhile > most {
		t.Errorf("%d of the club's pushes went before the band's 40 were out, want at most %d: the small post waited behind the big one",
			meanwhile, most)
	}
	s.waitDone(s.MuniKey, bigID)
}

func set(tokens []string) map[string]bool {
	m := make(map[string]bool, len(tokens))
	for _, t := range tokens {
		m[t] = true
	}
	return m
}
