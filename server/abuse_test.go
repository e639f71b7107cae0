package server_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
)

// TestAlertThroughAbuse: while 200 slow connections trickle a request
// header a byte at a time (or send nothing) and 50 clients ask for heavy
// audience previews as fast as they are answered, an alert is accepted and
// its first push sent within seconds, and the server closes every slow
// connection within its header timeout. Without the header timeout the
// slow connections stay open; without the previews' limit the previews take
// the API's pool and the database, and the alert waits behind them.
func TestAlertThroughAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("seconds of load: not in -short")
	}
	t.Parallel()
	const (
		headerTimeout = 2 * time.Second
		slow          = 200
		previewers    = 50
		crowd         = 5000 // devices, with two places each, inside the previews' polygon
		vertices      = 8000 // of the previews' polygon; 10,000 is a segment's most
		// bound is the generous "within seconds" of every promise here: an
		// alert's answer, its first push, a slow connection's closing past
		// the header timeout.
		bound = 10 * time.Second
	)
	s := newStackWith(t, server.Config{ReadHeaderTimeout: headerTimeout})
	ctx := context.Background()
	s.feed(t, s.muni, "beredskap", "Beredskap", false)

	// Three residents at home in the alert's area, far from the crowd.
	ok := emulator.Behaviour{Kind: emulator.Accept}
	alerted := map[string]bool{}
	for i := range 3 {
		tok := emulator.FCMToken(ok, fmt.Sprintf("resident-%d", i))
		alerted[tok] = true
		if code := s.do("PUT", fmt.Sprintf("/v1/devices/resident-%d", i), s.AppKey, map[string]any{"provider": "fcm", "token": tok,
			"places": []map[string]any{{"name": "home", "lat": 60.5, "lon": 11.5}}}, nil); code != http.StatusCreated {
			t.Fatalf("register resident %d: %d", i, code)
		}
	}
	if _, err := s.db.Pool.Exec(ctx, `INSERT INTO devices (tenant_id, installation_id, provider, platform, token, places, place_geom)
		SELECT $1, 'crowd-' || i, 'fcm', 'android', 'crowd-' || i,
			jsonb_build_array(jsonb_build_object('name', 'home', 'lat', lat1, 'lon', lon1),
				jsonb_build_object('name', 'cabin', 'lat', lat2, 'lon', lon2)),
			ST_SetSRID(ST_Collect(ST_MakePoint(lon1, lat1), ST_MakePoint(lon2, lat2)), 4326)
		FROM (SELECT i, 59.0 + random() * 0.3 AS lat1, 10.0 + random() * 0.5 AS lon1,
			59.0 + random() * 0.3 AS lat2, 10.0 + random() * 0.5 AS lon2 FROM generate_series(1, $2) i) p`,
		s.tenant.ID, crowd); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Pool.Exec(ctx, `ANALYZE devices`); err != nil {
		t.Fatal(err)
	}
	preview := fmt.Sprintf(`{"feed": "beredskap", "segment": {"within": %s}}`, starPolygon(10.25, 59.15, vertices))
	var alone struct{ Total int }
	start := time.Now()
	if code := s.do("POST", "/v1/audience/preview", s.MuniKey, preview, &alone); code != http.StatusOK || alone.Total != crowd {
		t.Fatalf("one preview: %d, %d devices; want 200 and the crowd of %d", code, alone.Total, crowd)
	}
	t.Logf("one preview alone: %v", time.Since(start))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lifetimes []time.Duration
	for i := range slow {
		wg.Go(func() {
			slowConnections(strings.TrimPrefix(s.base, "http://"), i%2 == 0, headerTimeout+2*bound, stop, func(d time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				lifetimes = append(lifetimes, d)
			})
		})
	}
	var started, previewed, refused, other atomic.Int64
	var lastOther atomic.Value
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: previewers}}
	defer hc.CloseIdleConnections()
	for i := range previewers {
		// Each previewer is an editor of its own, as each publisher has its
		// own budget of previews (publish.Config.PreviewLimit): the flood is
		// many publishers', which only the API's limit holds.
		editor := testenv.Publisher(t, s.db, s.tenant.ID, fmt.Sprintf("editor-%d", i), "Redaktør", crier.RoleMunicipality)
		key, err := s.db.NewAPIKey(ctx, s.tenant.ID, &editor.ID, "console")
		if err != nil {
			t.Fatal(err)
		}
		client := apiclient.Client{Base: s.base, Key: key, HTTP: hc}
		wg.Go(func() {
			started.Add(1)
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, err := client.Do(ctx, "POST", "/v1/audience/preview", preview, nil)
				switch {
				case err == nil && status == http.StatusOK:
					previewed.Add(1)
				case err == nil && status == http.StatusTooManyRequests:
					refused.Add(1)
				default:
					other.Add(1)
					lastOther.Store(fmt.Sprintf("%d %v", status, err))
				}
			}
		})
	}
	// The flood is on when every previewer has asked and the first answers
	// are back.
	eventually(t, time.Minute, func() error {
		if n := previewed.Load() + refused.Load() + other.Load(); started.Load() < int64(previewers) || n == 0 {
			return fmt.Errorf("%w: %d previewers asking, %d answers", errNotYet, started.Load(), n)
		}
		return nil
	})

	start = time.Now()
	code, out := s.postAlert(s.MuniKey, "", "application/json", `{"feed": "beredskap", "title": "Flom", "body": "Evakuer",
		"area": {"type": "Polygon", "coordinates": [[[11.4, 60.4], [11.6, 60.4], [11.6, 60.6], [11.4, 60.6], [11.4, 60.4]]]}}`)
	accepted := time.Since(start)
	if code != http.StatusAccepted {
		t.Fatalf("alert during the flood: %d %v", code, out)
	}
	if accepted > bound {
		t.Errorf("the alert was accepted after %v, want within %v", accepted, bound)
	}
	var firstPush time.Duration
	eventually(t, bound, func() error {
		for _, r := range s.emu.Records() {
			if alerted[r.Token] && r.Accepted() {
				firstPush = time.Since(start)
				return nil
			}
		}
		return fmt.Errorf("%w: no push of the alert", errNotYet)
	})
	close(stop)
	wg.Wait()
	t.Logf("alert accepted after %v, first push after %v; %d previews answered, %d refused (429), %d otherwise (last: %v)",
		accepted, firstPush, previewed.Load(), refused.Load(), other.Load(), lastOther.Load())

	if refused.Load() == 0 {
		t.Error("no preview was refused (429): the previews' limit did not hold them")
	}
	if len(lifetimes) < slow {
		t.Errorf("%d slow connections closed, want at least %d", len(lifetimes), slow)
	}
	longest := time.Duration(0)
	for _, d := range lifetimes {
		longest = max(longest, d)
	}
	if longest > headerTimeout+bound {
		t.Errorf("a slow connection stayed open %v, want it closed by the server within the header timeout (%v)", longest, headerTimeout)
	}
	t.Logf("%d slow connections, the longest open %v", len(lifetimes), longest)
}

// slowConnections opens connections to addr, one after another until stop,
// that send a request header a byte every 100 ms that never ends (or, if
// silent, nothing), and reports how long the server kept each open; one it
// keeps past limit is closed by this side and reported as open that long.
func slowConnections(addr string, silent bool, limit time.Duration, stop <-chan struct{}, report func(time.Duration)) {
	header := "GET /healthz HTTP/1.1\r\nHost: crier\r\nX-Slow: "
	for {
		select {
		case <-stop:
			return
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		opened := time.Now()
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			c.SetReadDeadline(opened.Add(limit)) //nolint:errcheck
			io.Copy(io.Discard, c)               //nolint:errcheck // EOF or a reset is the server closing; a timeout is ours
		}()
		tick := time.NewTicker(100 * time.Millisecond)
	trickle:
		for i := 0; ; i++ {
			select {
			case <-closed:
				break trickle
			case <-tick.C:
				if silent {
					continue
				}
				b := byte('a')
				if i < len(header) {
					b = header[i]
				}
				c.Write([]byte{b}) //nolint:errcheck // the server may have closed it
			}
		}
		tick.Stop()
		report(time.Since(opened))
		c.Close()
	}
}

// starPolygon is a GeoJSON Polygon of n vertices around (lon, lat), half of
// them 0.4° × 0.25° from it and half 0.5° × 0.3°: costly to test a point
// against, like a detailed coastline.
func starPolygon(lon, lat float64, n int) string {
	var b strings.Builder
	b.WriteString(`{"type": "Polygon", "coordinates": [[`)
	for i := range n + 1 {
		a := 2 * math.Pi * float64(i%n) / float64(n)
		rx, ry := 0.4, 0.25
		if i%2 == 1 {
			rx, ry = 0.5, 0.3
		}
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, "[%.5f,%.5f]", lon+rx*math.Cos(a), lat+ry*math.Sin(a))
	}
	b.WriteString(`]]}`)
	return b.String()
}
