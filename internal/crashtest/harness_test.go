package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/dispatcher"
	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/storage"
)

// crierBin is the crier binary built once for this test binary by TestMain.
var crierBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crier-crashtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "crashtest:", err)
		os.Exit(1)
	}
	crierBin = filepath.Join(dir, "crier")
	build := exec.Command("go", "build", "-o", crierBin, "github.com/crier-push/crier/cmd/crier")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "crashtest: build crier:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// within is how long any one wait of these tests may take: a killed
// worker's tasks come back only when their 30 s lease has expired and a
// recoverer (every minute) has seen it.
const within = 5 * time.Minute

// proc is one crier process.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  *procLog
	done chan struct{}
	// Addr is where the API listens, for the api and serve roles.
	Addr string
}

// startCrier starts `crier <role> args...` against the database and Redis,
// in its own process group, and waits until it logs that it started. Its
// output goes to a file in the test's temporary directory, or in
// $CRASHTEST_LOGS if set (to read after the run); its last lines are shown
// if the test fails.
func startCrier(t *testing.T, name, role, dbURL, redisURL string, args ...string) *proc {
	t.Helper()
	args = append([]string{role}, args...)
	if role == "api" || role == "serve" {
		args = append(args, "-addr", "127.0.0.1:0")
	}
	logPath := filepath.Join(t.TempDir(), name+".log")
	if d := os.Getenv("CRASHTEST_LOGS"); d != "" {
		logPath = filepath.Join(d, t.Name()+"-"+name+".log")
	}
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, log: newProcLog(f), done: make(chan struct{})}
	p.cmd = exec.Command(crierBin, args...)
	env := []string{"CRIER_DATABASE_URL=" + dbURL, "CRIER_REDIS_URL=" + redisURL, "CRIER_SECRET_KEY=" + testenv.SecretKey}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CRIER_") {
			env = append(env, kv)
		}
	}
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// Its own process group, so a kill takes everything it started; and
	// killed with the test binary if that dies first.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.cmd.Wait() //nolint:errcheck // killed on purpose; exits are checked with alive
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("last lines of %s (%s):\n%s", name, logPath, p.log.tail())
		}
	})
	select {
	case p.Addr = <-p.log.started:
	case <-p.done:
		t.Fatalf("%s exited before it started:\n%s", name, p.log.tail())
	case <-time.After(time.Minute):
		t.Fatalf("%s did not start within a minute:\n%s", name, p.log.tail())
	}
	return p
}

// Kill kills the process group with SIGKILL and waits for the process to be
// gone. Killing a dead process is a no-op.
func (p *proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) //nolint:errcheck // it may have exited meanwhile
	<-p.done
}

// alive fails the test if the process has exited by itself.
func (p *proc) alive() {
	p.t.Helper()
	select {
	case <-p.done:
		p.t.Errorf("%s exited by itself: %v\n%s", p.name, p.cmd.ProcessState, p.log.tail())
	default:
	}
}

// procLog writes a process's output to a file, keeps its last lines for
// failure reports, and reports the API address of its start line.
type procLog struct {
	mu      sync.Mutex
	f       *os.File
	partial []byte
	last    []string
	started chan string
	once    sync.Once
}

func newProcLog(f *os.File) *procLog {
	return &procLog{f: f, started: make(chan string, 1)}
}

// startLine is serve.go's `log.Info("crier started", ..., "addr", ...)`.
var startLine = regexp.MustCompile(`msg="crier started".* addr=("?)([^ "\n]*)`)

func (l *procLog) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.f.Write(b) //nolint:errcheck // the log is a debugging aid
	l.partial = append(l.partial, b...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		if m := startLine.FindStringSubmatch(line); m != nil {
			l.once.Do(func() { l.started <- m[2] })
		}
		l.last = append(l.last, line)
		if len(l.last) > 40 {
			l.last = l.last[len(l.last)-40:]
		}
	}
	return len(b), nil
}

func (l *procLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.last, "\n")
}

// fixture is one tenant in a fresh database, pointed at an in-process
// emulator: a municipality publishing to one feed with one key.
type fixture struct {
	t      *testing.T
	dbURL  string
	db     *storage.DB
	emu    *emulator.Emulator
	tenant storage.Tenant
	feed   crier.Feed
	key    string // the municipality's publisher key
}

// newFixture makes the tenant; a mandatory feed reaches every device. The
// emulator answers after latency, so that sends take long enough to be
// interrupted.
func newFixture(t *testing.T, mandatory bool, latency time.Duration) *fixture {
	t.Helper()
	ctx := context.Background()
	dbURL, _ := testenv.DBURL(t)
	db, err := storage.Open(ctx, storage.Config{URL: dbURL, MaxConns: 4, Secrets: testenv.Secrets()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	emu := testenv.StartEmulator(t, emulator.Config{Latency: latency, MaxRecords: 200000})

	fx := &fixture{t: t, dbURL: dbURL, db: db, emu: emu}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	var muni crier.Publisher
	fx.tenant, muni = testenv.EmulatorTenant(t, db, emu)
	fx.feed, err = db.CreateFeed(ctx, fx.tenant.ID, muni.ID, "nyheter", "Nyheter", mandatory)
	must(err)
	fx.key, err = db.NewAPIKey(ctx, fx.tenant.ID, &muni.ID, "cms")
	must(err)
	return fx
}

// seedDevices inserts n devices that follow the feed, every apnsEvery-th an
// iPhone (none if 0) and the rest Android, all with tokens the emulator
// accepts, and returns their tokens.
func (fx *fixture) seedDevices(n, apnsEvery int) map[string]bool {
	fx.t.Helper()
	ctx := context.Background()
	_, err := fx.db.Pool.Exec(ctx, `INSERT INTO devices (tenant_id, installation_id, provider, platform, token, follows)
		SELECT $1, 'dev-' || i,
		       CASE WHEN $4 > 0 AND i % $4 = 0 THEN 'apns' ELSE 'fcm' END,
		       CASE WHEN $4 > 0 AND i % $4 = 0 THEN 'ios' ELSE 'android' END,
		       CASE WHEN $4 > 0 AND i % $4 = 0 THEN 'e1e10100000000' || lpad(to_hex(i), 50, '0')
		            ELSE 'emu-ok-dev-' || i END,
		       ARRAY[$2::bigint]
		FROM generate_series(1, $3::int) i`, fx.tenant.ID, fx.feed.ID, n, apnsEvery)
	if err != nil {
		fx.t.Fatalf("seed devices: %v", err)
	}
	rows, err := fx.db.Pool.Query(ctx, `SELECT token FROM devices WHERE tenant_id = $1`, fx.tenant.ID)
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
		tokens[tok] = true
	}
	if err := rows.Err(); err != nil {
		fx.t.Fatal(err)
	}
	if len(tokens) != n {
		fx.t.Fatalf("seeded %d devices, want %d", len(tokens), n)
	}
	// Sample a token of each kind against the emulator's own grammar.
	for tok := range tokens {
		provider := "fcm"
		if !strings.HasPrefix(tok, "emu-") {
			provider = "apns"
		}
		if b, ok := emulator.ParseToken(provider, tok); !ok || b.Kind != emulator.Accept {
			fx.t.Fatalf("seeded token %q is not an accepting emulator token", tok)
		}
	}
	return tokens
}

// accepted is how many pushes the emulator has accepted so far.
func (fx *fixture) accepted() int {
	s := fx.emu.Summary()
	return s.FCM.Accepted + s.APNs.Accepted
}

// waitAccepted waits until the emulator has accepted at least n pushes.
func (fx *fixture) waitAccepted(n int) {
	fx.t.Helper()
	testenv.Eventually(fx.t, within, 2*time.Millisecond, func() error {
		if got := fx.accepted(); got < n {
			return fmt.Errorf("emulator accepted %d pushes, waiting for %d", got, n)
		}
		return nil
	})
}

// deliveryReport is what the emulator accepted for one post, token by token.
type deliveryReport struct {
	perToken  map[string]int
	missing   []string // audience tokens with no accepted push
	strangers []string // tokens pushed to that are not in the audience
	dupTokens int      // tokens accepted more than once
	extra     int      // accepted pushes beyond one per token
}

// report counts the emulator's accepted pushes whose body carries title, by
// token, against the audience's tokens.
func (fx *fixture) report(tokens map[string]bool, title string) deliveryReport {
	r := deliveryReport{perToken: map[string]int{}}
	for _, rec := range fx.emu.Records() {
		if rec.Accepted() && strings.Contains(rec.Body, title) {
			r.perToken[rec.Token]++
		}
	}
	for tok := range tokens {
		if r.perToken[tok] == 0 {
			r.missing = append(r.missing, tok)
		}
	}
	for tok, n := range r.perToken {
		if !tokens[tok] {
			r.strangers = append(r.strangers, tok)
		}
		if n > 1 {
			r.dupTokens++
			r.extra += n - 1
		}
	}
	sort.Strings(r.missing)
	sort.Strings(r.strangers)
	return r
}

// checkEveryoneReached fails the test for every audience token the post did
// not reach and every token outside the audience it reached.
func (fx *fixture) checkEveryoneReached(r deliveryReport, n int) {
	fx.t.Helper()
	if len(r.missing) > 0 {
		fx.t.Errorf("%d of %d devices never got the push, e.g. %q", len(r.missing), n, r.missing[:min(5, len(r.missing))])
	}
	if len(r.strangers) > 0 {
		fx.t.Errorf("%d pushes to tokens outside the audience, e.g. %q", len(r.strangers), r.strangers[:min(5, len(r.strangers))])
	}
}

// api talks to a crier API process.
type api struct {
	t    *testing.T
	base string
	key  string
	http *http.Client
}

func newAPI(t *testing.T, addr, key string) *api {
	return &api{t: t, base: "http://" + addr, key: key, http: &http.Client{Timeout: 20 * time.Second}}
}

// do sends a request with the key and decodes a JSON answer of a 2xx into
// out.
func (a *api) do(method, path string, body, out any) (*http.Response, error) {
	h := http.Header{}
	var raw string
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		raw = string(b)
		h.Set("Content-Type", "application/json")
	}
	c := apiclient.Client{Base: a.base, Key: a.key, HTTP: a.http}
	status, header, answer, err := c.Send(context.Background(), method, path, h, raw)
	if err != nil {
		return nil, err
	}
	resp := &http.Response{StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), Header: header}
	if out != nil && status < 300 {
		if err := json.Unmarshal(answer, out); err != nil {
			return resp, fmt.Errorf("%s %s: decode %q: %w", method, path, answer, err)
		}
	}
	return resp, nil
}

// postBody is a post to the fixture's feed.
func postBody(title, externalID string) map[string]any {
	b := map[string]any{"feed": "nyheter", "title": title, "body": "Stengt vann i Storgata til 15:00."}
	if externalID != "" {
		b["external_id"] = externalID
	}
	return b
}

// publish creates a post and returns its id; it must be accepted.
func (a *api) publish(title, externalID string) int64 {
	a.t.Helper()
	var created struct {
		ID int64 `json:"id"`
	}
	resp, err := a.do("POST", "/v1/posts", postBody(title, externalID), &created)
	if err != nil {
		a.t.Fatalf("POST /v1/posts: %v", err)
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		a.t.Fatalf("POST /v1/posts: %s", resp.Status)
	}
	return created.ID
}

// publishRetrying creates a post as a well-behaved publisher does after an
// outage: a 503 is retried, with the same external id, until accepted.
// It returns the post's id and how many 503s came first.
func (a *api) publishRetrying(title, externalID string) (int64, int) {
	a.t.Helper()
	var created struct {
		ID int64 `json:"id"`
	}
	refused := 0
	testenv.Eventually(a.t, time.Minute, time.Second, func() error {
		resp, err := a.do("POST", "/v1/posts", postBody(title, externalID), &created)
		switch {
		case err != nil:
			return err
		case resp.StatusCode == http.StatusServiceUnavailable:
			refused++
			return fmt.Errorf("POST /v1/posts: %s", resp.Status)
		case resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK:
			a.t.Fatalf("POST /v1/posts: %s", resp.Status)
		}
		return nil
	})
	return created.ID, refused
}

func (a *api) status(id int64) (apiclient.PostStatus, error) {
	var st apiclient.PostStatus
	resp, err := a.do("GET", "/v1/posts/"+strconv.FormatInt(id, 10), nil, &st)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET post %d: %s", id, resp.Status)
	}
	return st, nil
}

var errNotDone = errors.New("not done")

// waitDone waits until the post is done (every delivery has an outcome) and
// returns its status; it logs progress now and then.
func (a *api) waitDone(id int64) apiclient.PostStatus {
	a.t.Helper()
	var st apiclient.PostStatus
	lastLog := time.Now()
	testenv.Eventually(a.t, within, 100*time.Millisecond, func() error {
		var err error
		st, err = a.status(id)
		if err != nil {
			return err
		}
		if time.Since(lastLog) > 10*time.Second {
			a.t.Logf("post %d: state %s, counts %v", id, st.State, st.Counts)
			lastLog = time.Now()
		}
		if st.State != "done" {
			return fmt.Errorf("%w: post %d: state %s, counts %v", errNotDone, id, st.State, st.Counts)
		}
		return nil
	})
	return st
}

// checkAllSent fails the test unless the post is done with every one of its
// n deliveries sent.
func checkAllSent(t *testing.T, st apiclient.PostStatus, n int) {
	t.Helper()
	if st.Audience == nil || *st.Audience != n || st.Counts["sent"] != n || st.Pending != 0 {
		aud := -1
		if st.Audience != nil {
			aud = *st.Audience
		}
		t.Errorf("post %d: audience %d, counts %v, pending %d; want audience %d, all sent", st.ID, aud, st.Counts, st.Pending, n)
	}
}

// deviceAt is the id of the tenant's device at an offset in id order.
func (fx *fixture) deviceAt(offset int) int64 {
	fx.t.Helper()
	var id int64
	if err := fx.db.Pool.QueryRow(context.Background(), `SELECT id FROM devices WHERE tenant_id = $1 ORDER BY id OFFSET $2 LIMIT 1`,
		fx.tenant.ID, offset).Scan(&id); err != nil {
		fx.t.Fatal(err)
	}
	return id
}

// killPoint is where a kill left a post's dispatch: its state, its resume
// point, the audience before it and the sends queued.
type killPoint struct {
	state    string
	cursor   int64
	position int
	queued   int
}

// past is how many sends past the resume point were queued at the kill.
func (k killPoint) past() int { return k.queued - k.position }

// killMidPage waits until post id's dispatch, run by dispatching (a worker
// that only dispatches, so nothing it queued is sent), has moved its resume
// point to killAt or beyond, then SIGKILLs it in the first three quarters
// of a page: some of the page's sends queued, and enough still to come that
// the dispatcher cannot finish the page and move its resume point between
// the look and the kill. Each look must be quick for that: the queue is
// measured by the length of asynq's pending list, not the inspector.
func (fx *fixture) killMidPage(dispatching *proc, id, killAt int64, rds testenv.Redis) killPoint {
	fx.t.Helper()
	rc := rds.Client(fx.t)
	queued := func() int {
		n, _ := rc.LLen(context.Background(), "asynq:{official}:pending").Result()
		return int(n)
	}
	var k killPoint
	look := func() error {
		err := fx.db.Pool.QueryRow(context.Background(), `SELECT p.state, p.dispatch_cursor,
			(SELECT count(*) FROM devices WHERE tenant_id = $2 AND id <= p.dispatch_cursor)
			FROM posts p WHERE p.id = $1`, id, fx.tenant.ID).Scan(&k.state, &k.cursor, &k.position)
		k.queued = queued()
		return err
	}
	pageSize := dispatcher.Config{}.WithDefaults().PageSize
	testenv.Eventually(fx.t, within, time.Millisecond, func() error {
		if err := look(); err != nil {
			return err
		}
		if k.state == "sending" {
			fx.t.Fatalf("the dispatch finished (resume point %d) before the test could kill it", k.cursor)
		}
		if k.cursor < killAt || k.past() <= 0 || k.past() > pageSize*3/4 {
			return errNotDone
		}
		return nil
	})
	dispatching.Kill()
	if err := look(); err != nil {
		fx.t.Fatal(err)
	}
	return k
}

// queued returns how many tasks the named queues hold, whatever their
// state (none in a queue not created yet).
func queued(t *testing.T, rds testenv.Redis, queues ...string) func() int {
	insp := asynq.NewInspector(rds.AsynqOpt())
	t.Cleanup(func() { insp.Close() })
	return func() int {
		n := 0
		for _, q := range queues {
			if info, err := insp.GetQueueInfo(q); err == nil {
				n += info.Size
			}
		}
		return n
	}
}

// retryAndCheck has the publisher retry the post an outage refused
// (titled second, external id "second"), waits for it and for the first
// (id), and checks that every device got each exactly as it should.
func (fx *fixture) retryAndCheck(a *api, id int64, first, second string, tokens map[string]bool, devices int) (refused int, r, r2 deliveryReport) {
	id2, refused := a.publishRetrying(second, "second")
	st := a.waitDone(id)
	st2 := a.waitDone(id2)
	checkAllSent(fx.t, st, devices)
	checkAllSent(fx.t, st2, devices)
	r = fx.report(tokens, first)
	fx.checkEveryoneReached(r, devices)
	r2 = fx.report(tokens, second)
	fx.checkEveryoneReached(r2, devices)
	return refused, r, r2
}

// checkRepeatsInFlight fails the test if one outage (or one kill) made more
// repeated pushes than the sends that can have been in flight when it
// came: a send pushed whose outcome or acknowledgement the outage lost is
// pushed again, but a process runs no more than its concurrency of sends
// at once, and one that cannot record outcomes starts no new ones
// (worker.Recorder.Healthy). More repeats mean sends that had finished, or
// had not started, were pushed again.
func checkRepeatsInFlight(t *testing.T, extra, sendingProcs, concurrency int) {
	t.Helper()
	if bound := sendingProcs * concurrency; extra > bound {
		t.Errorf("%d extra pushes, more than the %d sends that can have been in flight (%d sending processes × "+
			"concurrency %d)", extra, bound, sendingProcs, concurrency)
	}
}
