package server_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/crier-push/crier/providers/emulator"
)

// TestReachFromReceipts is reach end to end: the emulator plays the apps,
// posting each accepted push's receipt to crier with the installation's
// device secret; the receipts go through the API's batch writer, and the
// post's reach shows every device of the audience received and displayed
// it, with latencies from its acceptance.
func TestReachFromReceipts(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.feed(t, s.muni, "beredskap", "Beredskap", false)
	ok := emulator.Behaviour{Kind: emulator.Accept}
	installations := map[string]string{} // token → installation
	for i := range 9 {
		inst, provider, token := fmt.Sprintf("phone-%d", i), "fcm", emulator.FCMToken(ok, fmt.Sprintf("r%d", i))
		if i%3 == 2 {
			provider, token = "apns", emulator.APNsToken(ok, uint64(700+i))
		}
		installations[token] = inst
		body := map[string]any{"provider": provider, "token": token, "follows": []string{"beredskap"}}
		if code := s.do("PUT", "/v1/devices/"+inst, s.AppKey, body, nil); code != http.StatusCreated {
			t.Fatalf("register %s: %d", inst, code)
		}
	}
	if err := s.emu.PostReceipts(emulator.ReceiptsConfig{URL: s.base, Displayed: true,
		Device: func(_, token string, _ int64) (emulator.ReceiptDevice, bool) {
			inst, ok := installations[token]
			return emulator.ReceiptDevice{AppKey: s.AppKey, InstallationID: inst, Secret: s.secrets.Get(inst)}, ok
		}}); err != nil {
		t.Fatal(err)
	}
	id := s.post(s.MuniKey, map[string]any{"feed": "beredskap", "title": "Flom", "body": "Evakuer nå.", "class": "emergency"})
	st := s.waitDone(s.MuniKey, id)
	if st.Audience == nil || *st.Audience != 9 {
		t.Fatalf("audience %v, want 9", st.Audience)
	}
	type reach struct {
		Received  int `json:"received"`
		Displayed int `json:"displayed"`
		LatencyMS *struct {
			First, Median, P95 int64
		} `json:"latency_ms"`
	}
	var got struct {
		Reach reach `json:"reach"`
	}
	eventually(t, 30*time.Second, func() error {
		if code := s.do("GET", "/v1/posts/"+strconv.FormatInt(id, 10), s.MuniKey, nil, &got); code != http.StatusOK {
			return fmt.Errorf("GET post: %d", code)
		}
		if got.Reach.Received != 9 {
			return fmt.Errorf("%w: reach %+v, receipts %+v", errNotYet, got.Reach, s.emu.ReceiptStats())
		}
		return nil
	})
	r := got.Reach
	if r.Displayed != 9 || r.LatencyMS == nil || r.LatencyMS.First < 0 || r.LatencyMS.First > r.LatencyMS.Median ||
		r.LatencyMS.Median > r.LatencyMS.P95 || r.LatencyMS.P95 > 30_000 {
		t.Errorf("reach %+v (latency %+v): want 9 displayed and 0 <= first <= median <= p95 < 30 s", r, r.LatencyMS)
	}
	if rs := s.emu.ReceiptStats(); rs.Accepted != 9 || rs.Refused+rs.Failed+rs.Dropped != 0 {
		t.Errorf("the apps' receipts: %+v, want 9 accepted and none refused", rs)
	}
}
