package crashtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/crier-push/crier/internal/testenv"
)

// TestRedisRestartMidPost: Redis (with an append-only file fsynced on every
// write) is stopped in the middle of a post and started again on the same
// socket and directory. The crier processes ride it out and every device
// gets the post. A post published while Redis is away is accepted (202):
// it is stored, and the reconciler queues its dispatch once Redis is back,
// so it too reaches every device, and exactly once. The only doubles are
// sends of the first post that were in flight when Redis went away (their
// acknowledgement lost, they run again): at most the two sending
// processes' concurrency.
func TestRedisRestartMidPost(t *testing.T) {
	t.Parallel()
	const (
		devices = 10000
		// Two processes send (serve and worker), each this many at once.
		sendingProcs = 2
		concurrency  = 50
	)
	fx := newFixture(t, false, 3*time.Millisecond)
	rds := startPersistentRedis(t)
	tokens := fx.seedDevices(devices, 3)

	conc := strconv.Itoa(concurrency)
	serve := startCrier(t, "serve", "serve", fx.dbURL, rds.URL(), "-concurrency", conc)
	worker := startCrier(t, "worker", "worker", fx.dbURL, rds.URL(), "-concurrency", conc)
	a := newAPI(t, serve.Addr, fx.key)

	const first, second = "Brannfare i skogen", "Skogen er åpen igjen"
	start := time.Now()
	id := a.publish(first, "first")
	fx.waitAccepted(devices * 3 / 10)

	rds.stop()
	down := time.Now()
	atStop := fx.accepted()
	// Redis is away: the post is stored, so it is accepted.
	var created struct {
		ID int64 `json:"id"`
	}
	resp, err := a.do("POST", "/v1/posts", postBody(second, "second"), &created)
	switch {
	case err != nil:
		t.Fatalf("POST /v1/posts without Redis: %v; want 202 Accepted", err)
	case resp.StatusCode != http.StatusAccepted:
		t.Fatalf("POST /v1/posts without Redis: %s; want 202 Accepted", resp.Status)
	}
	id2 := created.ID
	rds.start()
	downFor := time.Since(down)

	st, st2 := a.waitDone(id), a.waitDone(id2)
	took := time.Since(start)
	checkAllSent(t, st, devices)
	checkAllSent(t, st2, devices)
	r, r2 := fx.report(tokens, first), fx.report(tokens, second)
	fx.checkEveryoneReached(r, devices)
	fx.checkEveryoneReached(r2, devices)
	if r2.extra != 0 {
		t.Errorf("the post accepted while Redis was away: %d pushes beyond one per device (%d devices more than once), "+
			"want none", r2.extra, r2.dupTokens)
	}
	if st2.FirstSentAt != nil && st2.FirstSentAt.Before(down.Add(downFor)) {
		t.Errorf("the post accepted while Redis was away was first sent at %s, before Redis was back", st2.FirstSentAt)
	}
	t.Logf("Redis down for %s with %d of %d pushes of the first post accepted; the post published meanwhile accepted; "+
		"duplicates: %d extra pushes (first post), %d (second), in-flight bound %d; both done in %s",
		downFor.Round(time.Millisecond), atStop, devices, r.extra, r2.extra, sendingProcs*concurrency, took.Round(time.Millisecond))
	checkRepeatsInFlight(t, r.extra, sendingProcs, concurrency)
	serve.alive()
	worker.alive()
}

// persistentRedis is a private redis-server on a unix socket that keeps its
// data in an append-only file fsynced on every write, so it can be stopped
// and started again with its queues intact.
type persistentRedis struct {
	t    *testing.T
	dir  string
	sock string
	cmd  *exec.Cmd
	done chan struct{}
}

func startPersistentRedis(t *testing.T) *persistentRedis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("required service missing (CI=true): redis-server is not installed")
		}
		t.Skip("SKIPPING: required service missing: redis-server is not installed (run scripts/services.sh)")
	}
	// Unix socket paths are limited to about 100 bytes: t.TempDir is too long.
	dir, err := os.MkdirTemp("", "crier-redis-")
	if err != nil {
		t.Fatal(err)
	}
	r := &persistentRedis{t: t, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	t.Cleanup(func() {
		if r.cmd != nil {
			r.cmd.Process.Kill() //nolint:errcheck // it may have exited
			<-r.done
		}
		os.RemoveAll(dir)
	})
	r.start()
	return r
}

// URL is this Redis as a CRIER_REDIS_URL.
func (r *persistentRedis) URL() string { return "redis-socket://" + r.sock }

// start starts redis-server on the socket and directory and waits until it
// has loaded its append-only file.
func (r *persistentRedis) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", "0", "--unixsocket", r.sock, "--unixsocketperm", "700",
		"--dir", r.dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--logfile", filepath.Join(r.dir, "redis.log"))
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	r.done = done
	go func() { r.cmd.Wait(); close(done) }() //nolint:errcheck // exits are checked below
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: r.sock, MaxRetries: -1})
	defer c.Close()
	testenv.Eventually(r.t, 30*time.Second, 10*time.Millisecond, func() error {
		select {
		case <-done:
			r.t.Fatalf("redis-server exited: %s", r.log())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		// PING answers while the append-only file is still loading; the
		// queues are back only when INFO says loading:0.
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "loading:0") {
			return fmt.Errorf("%w: redis-server is loading its data", errNotDone)
		}
		return nil
	})
}

// stop stops redis-server with SIGTERM, as an operator would, and waits
// for it to have written everything and exited.
func (r *persistentRedis) stop() {
	r.t.Helper()
	r.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // checked by waiting
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		r.t.Fatalf("redis-server did not stop within a minute: %s", r.log())
	}
	if !strings.Contains(r.log(), "ready to exit") {
		r.t.Fatalf("redis-server did not shut down cleanly: %s", r.log())
	}
}

func (r *persistentRedis) log() string {
	b, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	return string(b)
}

// TestPostgresOutage: a TCP proxy between the crier processes and Postgres
// cuts every connection in the middle of a post and refuses new ones for
// five seconds. Meanwhile the API answers 503 with Retry-After (never a
// 500, never a hang); a post refused during the cut is accepted when its
// publisher retries; and both posts reach every device by themselves once
// Postgres is back. The only doubles are sends that were in flight at the
// cut (pushed, their outcome not written): at most the worker's
// concurrency, for a worker that cannot record outcomes starts no new send.
func TestPostgresOutage(t *testing.T) {
	t.Parallel()
	const (
		devices = 10000
		cut     = 5 * time.Second
		// One process sends (the api process does not), this many at once.
		sendingProcs = 1
		concurrency  = 50
	)
	fx := newFixture(t, false, 3*time.Millisecond)
	rds := testenv.StartRedis(t)
	tokens := fx.seedDevices(devices, 3)
	px := startProxy(t, fx.dbURL)
	viaProxy := px.url(fx.dbURL)

	apiProc := startCrier(t, "api", "api", viaProxy, rds.URL())
	worker := startCrier(t, "worker", "worker", viaProxy, rds.URL(), "-concurrency", strconv.Itoa(concurrency))
	a := newAPI(t, apiProc.Addr, fx.key)
	a.http.Timeout = 10 * time.Second

	const first, second = "Strømbrudd på Husøy", "Strømmen er tilbake"
	start := time.Now()
	id := a.publish(first, "first")
	fx.waitAccepted(devices / 4)

	px.cut()
	atCut := fx.accepted()
	cutAt := time.Now()
	// During the cut, read the post and try to publish another, over and
	// over: every answer must be a 503 with Retry-After.
	answers := map[string]int{}
	for i := 0; time.Since(cutAt) < cut; i++ {
		var resp *http.Response
		var err error
		what := "GET post"
		if i%2 == 0 {
			resp, err = a.do("GET", fmt.Sprintf("/v1/posts/%d", id), nil, nil)
		} else {
			what = "POST post"
			resp, err = a.do("POST", "/v1/posts", postBody(second, "second"), nil)
		}
		var got string
		switch {
		case err != nil:
			got = "error: " + err.Error()
		case resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") != "":
			got = "503 with Retry-After"
		default:
			got = fmt.Sprintf("%s, Retry-After %q", resp.Status, resp.Header.Get("Retry-After"))
		}
		answers[what+": "+got]++
		time.Sleep(50 * time.Millisecond) // pace the requests of the outage; nothing waits on work here
	}
	px.restore()
	sentDuringCut := fx.accepted() - atCut

	var keys []string
	for k := range answers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var summary []string
	for _, k := range keys {
		summary = append(summary, fmt.Sprintf("%s ×%d", k, answers[k]))
		if !strings.HasSuffix(k, ": 503 with Retry-After") {
			t.Errorf("during the Postgres outage, %s ×%d; want only 503 with Retry-After", k, answers[k])
		}
	}
	t.Logf("answers during the %s cut: %s", cut, strings.Join(summary, "; "))

	// The publisher retries; both posts complete by themselves.
	refused, r, r2 := fx.retryAndCheck(a, id, first, second, tokens, devices)
	took := time.Since(start)
	t.Logf("cut with %d of %d pushes accepted, %d more accepted during the cut; the retried post was refused %d more "+
		"times after the cut; duplicates: %d extra pushes (first post), %d (second), in-flight bound %d; both done in %s",
		atCut, devices, sentDuringCut, refused, r.extra, r2.extra, sendingProcs*concurrency, took.Round(time.Millisecond))
	checkRepeatsInFlight(t, r.extra+r2.extra, sendingProcs, concurrency)
	apiProc.alive()
	worker.alive()
}

// proxy forwards TCP connections to Postgres and can cut them: close every
// live connection and close new ones as soon as they arrive, until restored.
type proxy struct {
	t      *testing.T
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// startProxy starts a proxy to the Postgres server of dbURL.
func startProxy(t *testing.T, dbURL string) *proxy {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Host == "" || strings.HasPrefix(u.Host, "/") {
		t.Fatalf("the proxy needs Postgres on TCP, not %q", u.Redacted())
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

// url is dbURL through the proxy.
func (p *proxy) url(dbURL string) string {
	u, _ := url.Parse(dbURL)
	u.Host = p.ln.Addr().String()
	return u.String()
}

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

func (p *proxy) forward(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[client], p.conns[server] = true, true
	p.mu.Unlock()
	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			client.Close()
			server.Close()
			p.mu.Lock()
			delete(p.conns, client)
			delete(p.conns, server)
			p.mu.Unlock()
		})
	}
	go func() { io.Copy(server, client); closeBoth() }() //nolint:errcheck // ends with either side
	io.Copy(client, server)                              //nolint:errcheck // ends with either side
	closeBoth()
}

// cut closes every live connection and refuses new ones until restore.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
	}
}

// restore lets connections through again.
func (p *proxy) restore() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}
