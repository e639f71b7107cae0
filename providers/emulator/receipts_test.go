package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// receiptSink stands in for crier's receipts endpoint: it keeps what the
// apps posted, holds every request until released, counts how many it held
// at once, and refuses the first receipt of phone-b with 429.
type receiptSink struct {
	mu       sync.Mutex
	got      []string
	release  chan struct{}
	inFlight atomic.Int32
	maxHeld  atomic.Int32
	refusedB atomic.Bool
}

func (s *receiptSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	for m := s.maxHeld.Load(); n > m && !s.maxHeld.CompareAndSwap(m, n); m = s.maxHeld.Load() {
	}
	<-s.release
	if r.URL.Path == "/v1/devices/phone-b/receipts" && s.refusedB.CompareAndSwap(false, true) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.got = append(s.got, fmt.Sprintf("%s %s %s %s", r.URL.Path, r.Header.Get("Authorization"),
		r.Header.Get("X-Device-Secret"), body))
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// TestReceiptsPosted: with PostReceipts on, every accepted push of a post
// to a known app gets its receipt, posted with the app's key and secret
// and the push's time; pushes are answered while the receipts wait, at
// most Concurrency receipts are posted at once, and a 429 is retried after
// its Retry-After.
func TestReceiptsPosted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	sink := &receiptSink{release: make(chan struct{})}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	ok := Behaviour{Kind: Accept}
	apps := map[string]ReceiptDevice{
		FCMToken(ok, "a"): {AppKey: "app-key", InstallationID: "phone-a", Secret: "secret-a"},
		FCMToken(ok, "b"): {AppKey: "app-key", InstallationID: "phone-b", Secret: "secret-b"},
		FCMToken(ok, "c"): {AppKey: "app-key", InstallationID: "phone-c", Secret: "secret-c"},
		FCMToken(Behaviour{Kind: Unregistered}, "d"): {AppKey: "app-key", InstallationID: "phone-d", Secret: "secret-d"},
	}
	err := f.emu.PostReceipts(ReceiptsConfig{URL: srv.URL, Displayed: true, Concurrency: 2,
		Device: func(provider, token string, post int64) (ReceiptDevice, bool) {
			d, ok := apps[token]
			return d, ok && provider == "fcm"
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.emu.PostReceipts(ReceiptsConfig{URL: srv.URL, Device: func(string, string, int64) (ReceiptDevice, bool) {
		return ReceiptDevice{}, false
	}}); err == nil {
		t.Error("PostReceipts twice: no error")
	}
	bearer := f.accessToken(t)
	push := func(token, data string) int {
		status, _, _ := f.postFCM(t, testProject, bearer, fmt.Sprintf(`{"message":{"token":%q,"data":%s}}`, token, data))
		return status
	}
	// While the sink holds every receipt, pushes are still answered.
	for _, p := range []struct {
		token, data string
		status      int
	}{
		{FCMToken(ok, "a"), `{"post_id":"7"}`, 200},
		{FCMToken(ok, "b"), `{"post_id":"7"}`, 200},
		{FCMToken(ok, "c"), `{"post_id":"7"}`, 200},
		{FCMToken(ok, "a"), `{"post_id":"8"}`, 200},
		{FCMToken(ok, "a"), `{"other":"x"}`, 200},                              // no post: no receipt
		{FCMToken(ok, "z"), `{"post_id":"7"}`, 200},                            // an unknown app
		{FCMToken(Behaviour{Kind: Unregistered}, "d"), `{"post_id":"7"}`, 404}, // not delivered
	} {
		if got := push(p.token, p.data); got != p.status {
			t.Errorf("push to %s: %d, want %d", p.token, got, p.status)
		}
	}
	eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if sink.inFlight.Load() < 2 {
			return errors.New("fewer than two receipts held")
		}
		return nil
	})
	close(sink.release)
	eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		if st := f.emu.ReceiptStats(); !st.Done() || st.Queued != 4 {
			return fmt.Errorf("not done: %+v", st)
		}
		return nil
	})
	if m := sink.maxHeld.Load(); m != 2 {
		t.Errorf("%d receipts posted at once, want Concurrency = 2", m)
	}
	st := f.emu.ReceiptStats()
	if st.Accepted != 4 || st.Retried != 1 || st.Refused != 0 || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("stats %+v, want 4 accepted after 1 retry", st)
	}
	// Each receipt carries the push's time as received and displayed.
	var want []string
	for _, r := range f.emu.Records() {
		id, ok := pushPostID(r.Body)
		d, known := apps[r.Token]
		if !r.Accepted() || !ok || !known {
			continue
		}
		at, _ := json.Marshal(r.Time.UTC().Format(time.RFC3339Nano))
		want = append(want, fmt.Sprintf(`/v1/devices/%s/receipts Bearer app-key %s {"post_id":%d,"received_at":%s,"displayed_at":%s}`,
			d.InstallationID, d.Secret, id, at, at))
	}
	sink.mu.Lock()
	got := append([]string(nil), sink.got...)
	sink.mu.Unlock()
	sort.Strings(want)
	sort.Strings(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("receipts posted (-want +got):\n%s", diff)
	}
}

func TestReceiptsConfigValidate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Config{})
	dev := func(string, string, int64) (ReceiptDevice, bool) { return ReceiptDevice{}, false }
	for _, c := range []ReceiptsConfig{{Device: dev}, {URL: "ftp://x", Device: dev}, {URL: "http://127.0.0.1:1"},
		{URL: "http://127.0.0.1:1", Device: dev, Concurrency: -1}} {
		if err := f.emu.PostReceipts(c); err == nil {
			t.Errorf("PostReceipts(%+v) took a bad config", c)
		}
	}
}

// eventually polls f until it returns nil, failing t when d passes first
// (testenv.Eventually, which imports this package).
func eventually(t *testing.T, d, interval time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for err := f(); err != nil; err = f() {
		if time.Now().After(deadline) {
			t.Fatalf("not reached within %s: %v", d, err)
		}
		time.Sleep(interval)
	}
}
