package crashtest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
)

// TestCancelSeenByOtherWorkers: a post cancelled through the API process
// while two other processes, both workers, send it. The README promises
// that workers in every process see a cancellation within a second and
// send nothing more (a worker trusts a loaded post for 250 ms), and that
// every delivery not yet sent is cancelled at once. The devices answer
// after 300 ms, so that the post, at ten sends in flight, takes about nine
// seconds: without the workers' check the rest of it would still be pushed
// for seconds after the cancel. No push may reach the emulator more than 3 s
// after the cancel, a bound no slowness of the machine can reach: a send
// already begun was begun before the cancel, and one not begun reads the
// post from Postgres within the cache's 250 ms.
func TestCancelSeenByOtherWorkers(t *testing.T) {
	const (
		devices     = 300
		slow        = 300 * time.Millisecond
		concurrency = 5
		bound       = 3 * time.Second
		title       = "Vannavstengning i Storgata"
	)
	fx := newFixture(t, false, 0)
	rds := testenv.StartRedis(t)
	fx.seedDevices(devices, 0)
	tokens := fx.slowDown(slow)

	apiProc := startCrier(t, "api", "api", fx.dbURL, rds.URL())
	w1 := startCrier(t, "worker-1", "worker", fx.dbURL, rds.URL(), "-concurrency", strconv.Itoa(concurrency), "-metrics-addr", "127.0.0.1:0")
	w2 := startCrier(t, "worker-2", "worker", fx.dbURL, rds.URL(), "-concurrency", strconv.Itoa(concurrency), "-metrics-addr", "127.0.0.1:0")
	m1, m2 := scrapeOf(t, w1), scrapeOf(t, w2)
	a := newAPI(t, apiProc.Addr, fx.key)

	id := a.publish(title, "")
	// Cancel once both worker processes are sending the post, a second
	// into it.
	testenv.Eventually(t, within, 5*time.Millisecond, func() error {
		s1, err := m1.sends("fcm", "sent")
		if err != nil {
			return err
		}
		s2, err := m2.sends("fcm", "sent")
		if err != nil {
			return err
		}
		if s1 == 0 || s2 == 0 || s1+s2 < 40 {
			return fmt.Errorf("sends made by worker-1: %d, by worker-2: %d; waiting for both to send, 40 in all", s1, s2)
		}
		return nil
	})
	var cancel struct {
		State     string `json:"state"`
		Cancelled int    `json:"cancelled"`
	}
	resp, err := a.do("DELETE", "/v1/posts/"+strconv.FormatInt(id, 10), nil, &cancel)
	if err != nil {
		t.Fatalf("DELETE post %d: %v", id, err)
	}
	cancelledAt := time.Now()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE post %d: %s; the post was to be cancelled while it was sent", id, resp.Status)
	}
	if cancel.Cancelled == 0 {
		t.Fatalf("DELETE post %d cancelled no delivery: it was sent before the cancel", id)
	}

	// Once no task of the post is left in any queue, no push of it can
	// come any more.
	sizes := queued(t, rds, "dispatch", "official", "community")
	testenv.Eventually(t, within, 20*time.Millisecond, func() error {
		if n := sizes(); n > 0 {
			return fmt.Errorf("%d tasks still queued", n)
		}
		return nil
	})

	// A record is made when the emulator answers, the device's 300 ms after
	// the push reached it.
	after, late := 0, 0
	var latest time.Duration
	for _, rec := range fx.emu.Records() {
		if !strings.Contains(rec.Body, title) {
			continue
		}
		lag := rec.Time.Add(-slow).Sub(cancelledAt)
		if lag <= 0 {
			continue
		}
		after++
		latest = max(latest, lag)
		if lag > bound {
			late++
		}
	}
	t.Logf("%d deliveries cancelled; %d pushes reached the emulator after the cancel, the last %s after it",
		cancel.Cancelled, after, latest.Round(time.Millisecond))
	if late > 0 {
		t.Errorf("%d pushes of the cancelled post reached the emulator more than %s after the cancel (the last %s after it); "+
			"the workers were to stop within a second", late, bound, latest.Round(time.Millisecond))
	}

	// Every delivery not sent ended cancelled, as many as the cancel said.
	ctx := context.Background()
	states := map[string]int{}
	rows, err := fx.db.Pool.Query(ctx, `SELECT state, count(*) FROM deliveries WHERE post_id = $1 GROUP BY state`, id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			t.Fatal(err)
		}
		states[state] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if states["cancelled"] != cancel.Cancelled || states["sent"]+states["cancelled"] != devices {
		t.Errorf("deliveries by state %v; want %d cancelled (as the cancel said) and the other %d sent",
			states, cancel.Cancelled, devices-cancel.Cancelled)
	}
	// And every delivery sent was pushed.
	r := fx.report(tokens, title)
	var unpushed []string
	rows, err = fx.db.Pool.Query(ctx, `SELECT dv.token FROM deliveries d JOIN devices dv ON dv.id = d.device_id
		WHERE d.post_id = $1 AND d.state = 'sent'`, id)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tok string
		if err := rows.Scan(&tok); err != nil {
			t.Fatal(err)
		}
		if r.perToken[tok] == 0 {
			unpushed = append(unpushed, tok)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(unpushed) > 0 {
		t.Errorf("%d deliveries are sent that the emulator never accepted, e.g. %q", len(unpushed), unpushed[:min(5, len(unpushed))])
	}
	if st, err := a.status(id); err != nil {
		t.Error(err)
	} else if st.State != "cancelled" {
		t.Errorf("post %d is %s after the cancel; want cancelled", id, st.State)
	}
	w1.alive()
	w2.alive()
}

// TestThrottlePauseSharedAcrossWorkers: a 429 pauses the tenant's provider
// for its Retry-After in every worker process, and is not counted as a
// failed attempt. Two worker processes serve different queues: one routine
// posts, the other alerts. FCM answers every push 429 with Retry-After: 4
// until the routine worker has got such an answer, to a post for one
// device; the throttle then ends, and an alert to 200 devices is sent,
// which only the alert worker, which never saw a 429, sends. The pause in
// Redis must hold its sends back: until the 4 s are over the emulator,
// which would accept every push now, gets no more than a handful. (Were
// both processes to serve the same queues, the one that got the 429 would
// take most of the sends and hold them back by itself, and a pause kept in
// one process only would go unnoticed.) Then every delivery of both posts
// ends sent, each with one attempt counted: the post's 429 is not one.
func TestThrottlePauseSharedAcrossWorkers(t *testing.T) {
	const (
		devices     = 200
		concurrency = 4
		retryAfter  = 4 * time.Second
		// handful is the pushes the pause may let by: a process that had
		// looked at Redis just before the pause began trusts what it saw
		// for a moment, with up to its concurrency of sends.
		handful = concurrency
		title   = "Gasslekkasje"
	)
	ctx := context.Background()
	fx := newFixture(t, false, 0)
	rds := testenv.StartRedis(t)
	tokens := fx.seedDevices(devices, 0)
	// The alert's devices are all in Sandefjord; the post's one device
	// follows a feed of its own and is nowhere.
	if _, err := fx.db.Pool.Exec(ctx, `UPDATE devices SET places = '[{"name": "home", "lat": 59.053, "lon": 10.027}]',
		place_geom = ST_Multi(ST_SetSRID(ST_MakePoint(10.027, 59.053), 4326)) WHERE tenant_id = $1`, fx.tenant.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := fx.db.CreateFeed(ctx, fx.tenant.ID, fx.feed.PublisherID, "beredskap", "Beredskap", false); err != nil {
		t.Fatal(err)
	}
	ops, err := fx.db.CreateFeed(ctx, fx.tenant.ID, fx.feed.PublisherID, "drift", "Driftsmeldinger", false)
	if err != nil {
		t.Fatal(err)
	}
	trigger := emulator.FCMToken(emulator.Behaviour{Kind: emulator.Accept}, "drift")
	if _, err := fx.db.Pool.Exec(ctx, `INSERT INTO devices (tenant_id, installation_id, provider, platform, token, follows)
		VALUES ($1, 'dev-drift', 'fcm', 'android', $2, ARRAY[$3::bigint])`, fx.tenant.ID, trigger, ops.ID); err != nil {
		t.Fatal(err)
	}

	apiProc := startCrier(t, "api", "api", fx.dbURL, rds.URL())
	routine := startCrier(t, "worker-routine", "worker", fx.dbURL, rds.URL(), "-groups", "routine,dispatch",
		"-concurrency", strconv.Itoa(concurrency), "-metrics-addr", "127.0.0.1:0")
	urgent := startCrier(t, "worker-urgent", "worker", fx.dbURL, rds.URL(), "-groups", "urgent,dispatch",
		"-concurrency", strconv.Itoa(concurrency), "-metrics-addr", "127.0.0.1:0")
	mr, mu := scrapeOf(t, routine), scrapeOf(t, urgent)
	a := newAPI(t, apiProc.Addr, fx.key)

	fx.emu.Throttle(time.Minute, retryAfter)
	var created struct {
		ID int64 `json:"id"`
	}
	resp, err := a.do("POST", "/v1/posts", map[string]any{"feed": "drift", "title": "Driftsavbrudd",
		"body": "Nettsidene er nede i kveld."}, &created)
	if err != nil {
		t.Fatalf("POST /v1/posts: %v", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/posts: %s", resp.Status)
	}
	post := created.ID
	var hit emulator.Record
	testenv.Eventually(t, within, time.Millisecond, func() error {
		for _, rec := range fx.emu.RecordsFor(trigger) {
			if rec.Throttled {
				hit = rec
				return nil
			}
		}
		return fmt.Errorf("no 429 answered to the post's device yet")
	})
	fx.emu.Throttle(0, 0)
	pauseEnd := hit.Time.Add(retryAfter)
	// The routine worker pauses as soon as it has counted the 429.
	testenv.Eventually(t, within, time.Millisecond, func() error {
		if n, err := mr.sends("fcm", "throttled"); err != nil || n == 0 {
			return fmt.Errorf("the routine worker has not counted the 429 yet (%v)", err)
		}
		return nil
	})

	resp, err = a.do("POST", "/v1/alerts", map[string]any{"feed": "beredskap", "title": title,
		"body": "Hold vinduene lukket.", "area": map[string]any{"lat": 59.053, "lon": 10.027, "radius_m": 300}}, &created)
	if err != nil {
		t.Fatalf("POST /v1/alerts: %v", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/alerts: %s", resp.Status)
	}
	alert := created.ID
	// The check below means something only if the alert's sends were tried
	// while the pause held: held back, they wait in the retry set.
	insp := asynq.NewInspector(rds.AsynqOpt())
	t.Cleanup(func() { insp.Close() })
	heldBack := 0
	for time.Now().Before(pauseEnd) && heldBack == 0 {
		if info, err := insp.GetQueueInfo("emergency"); err == nil {
			heldBack = info.Retry
		}
		time.Sleep(10 * time.Millisecond)
	}

	checkAllSent(t, a.waitDone(post), 1)
	checkAllSent(t, a.waitDone(alert), devices)
	fx.checkEveryoneReached(fx.report(tokens, title), devices)

	during := 0
	for _, rec := range fx.emu.Records() {
		if rec.Provider == "fcm" && rec.Seq != hit.Seq && rec.Time.After(hit.Time) && rec.Time.Before(pauseEnd) {
			during++
		}
	}
	var perProcess []string
	sent := map[string]int{}
	for _, w := range []struct {
		name string
		m    *scrape
	}{{"worker-routine", mr}, {"worker-urgent", mu}} {
		n, err := w.m.sends("fcm", "sent")
		if err != nil {
			t.Fatal(err)
		}
		n429, err := w.m.sends("fcm", "throttled")
		if err != nil {
			t.Fatal(err)
		}
		sent[w.name] = n
		perProcess = append(perProcess, fmt.Sprintf("%s %d sent, %d answered 429", w.name, n, n429))
	}
	t.Logf("at least %d of the alert's sends were seen held back in the pause; %d pushes to FCM during it; %s",
		heldBack, during, strings.Join(perProcess, ", "))
	if heldBack == 0 && during == 0 {
		t.Logf("NOTE: the alert's sends were tried only after the pause; the pause was barely tested")
	}
	if during > handful {
		t.Errorf("%d pushes reached FCM in the %s the routine worker's 429 paused the tenant's FCM for; want at most %d",
			during, retryAfter, handful)
	}
	if sent["worker-routine"] != 1 || sent["worker-urgent"] != devices {
		t.Errorf("the routine worker sent %d, the alert worker %d; want the post's one send and the alert's %d",
			sent["worker-routine"], sent["worker-urgent"], devices)
	}
	if recs := fx.emu.RecordsFor(trigger); len(recs) != 2 || !recs[0].Throttled || !recs[1].Accepted() {
		t.Errorf("the post's device got %d pushes; want a 429 and then one accepted", len(recs))
	}

	// The throttled try is no attempt: every delivery, the throttled one
	// too, was tried once.
	rows, err := fx.db.Pool.Query(ctx, `SELECT d.post_id, dv.token, d.attempts FROM deliveries d
		JOIN devices dv ON dv.id = d.device_id WHERE d.post_id = ANY($1) AND d.attempts <> 1 ORDER BY d.post_id, dv.token`,
		[]int64{post, alert})
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var tok string
		var attempts int
		if err := rows.Scan(&id, &tok, &attempts); err != nil {
			t.Fatal(err)
		}
		t.Errorf("post %d, device %s: %d attempts counted; want 1 (a 429 is not a failed attempt)", id, tok, attempts)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	routine.alive()
	urgent.alive()
}

// slowDown gives every device of the fixture a token the emulator answers
// after d, and returns the tokens.
func (fx *fixture) slowDown(d time.Duration) map[string]bool {
	fx.t.Helper()
	// emu-slow.<ms>-, to which each device's installation id is added.
	prefix := strings.TrimSuffix(emulator.FCMToken(emulator.Behaviour{Kind: emulator.Slow, Arg: int(d / time.Millisecond)}, "x"), "x")
	rows, err := fx.db.Pool.Query(context.Background(), `UPDATE devices SET token = $2 || installation_id
		WHERE tenant_id = $1 RETURNING token`, fx.tenant.ID, prefix)
	if err != nil {
		fx.t.Fatal(err)
	}
	defer rows.Close()
	tokens := map[string]bool{}
	for rows.Next() {
		var tok string
		if err := rows.Scan(&tok); err != nil {
			fx.t.Fatal(err)
		}
		if b, ok := emulator.ParseToken("fcm", tok); !ok || b.Kind != emulator.Slow {
			fx.t.Fatalf("token %q is not a slow emulator token", tok)
		}
		tokens[tok] = true
	}
	if err := rows.Err(); err != nil {
		fx.t.Fatal(err)
	}
	return tokens
}

// scrape reads a crier process's /metrics.
type scrape struct {
	url  string
	http *http.Client
}

// scrapeOf finds where a process started with -metrics-addr 127.0.0.1:0
// serves its metrics: the one TCP socket it listens on.
func scrapeOf(t *testing.T, p *proc) *scrape {
	t.Helper()
	addr, err := listenAddr(p.cmd.Process.Pid)
	if err != nil {
		t.Fatalf("metrics address of %s: %v", p.name, err)
	}
	return &scrape{url: "http://" + addr + "/metrics", http: &http.Client{Timeout: 10 * time.Second}}
}

// sends is the process's crier_sends_total of one provider and outcome,
// summed over tenants.
func (s *scrape) sends(provider, outcome string) (int, error) {
	resp, err := s.http.Get(s.url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", s.url, resp.Status)
	}
	total := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		m := sendsLine.FindStringSubmatch(sc.Text())
		if m == nil || !strings.Contains(m[1], `provider="`+provider+`"`) || !strings.Contains(m[1], `outcome="`+outcome+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %q: %w", s.url, sc.Text(), err)
		}
		total += int(v)
	}
	return total, sc.Err()
}

var sendsLine = regexp.MustCompile(`^crier_sends_total\{([^}]*)\} (\S+)`)

// listenAddr is the address of the one TCP socket on 127.0.0.1 that
// process pid listens on, from its file descriptors and /proc/net/tcp.
func listenAddr(pid int) (string, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return "", err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return "", err
	}
	var found []string
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		// sl local_address rem_address st ... inode: 0100007F:1F90 is
		// 127.0.0.1:8080, st 0A is LISTEN.
		if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] || !strings.HasPrefix(f[1], "0100007F:") {
			continue
		}
		port, err := strconv.ParseUint(strings.TrimPrefix(f[1], "0100007F:"), 16, 16)
		if err != nil {
			return "", fmt.Errorf("/proc/%d/net/tcp: %q: %w", pid, line, err)
		}
		found = append(found, "127.0.0.1:"+strconv.FormatUint(port, 10))
	}
	if len(found) != 1 {
		return "", fmt.Errorf("process %d listens on %v; want one address", pid, found)
	}
	return found[0], nil
}
