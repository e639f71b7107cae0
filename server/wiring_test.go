package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/storage"
)

// These tests look inside a server for what its wiring decided: which
// pool has which statement timeout, and what each listener serves.

// startServer runs a server of cfg over a database and a Redis of its own
// until the test ends.
func startServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	dbURL, _ := testenv.DBURL(t)
	rds := testenv.StartRedis(t)
	cfg.DatabaseURL, cfg.RedisURL, cfg.Secrets, cfg.HTTPAddr = dbURL, rds.URL(), testenv.Secrets(), "127.0.0.1:0"
	cfg.Concurrency, cfg.QueueServers = 2, 1
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("server run: %v", err)
		}
		srv.Close()
	})
	return srv
}

// TestPoolsByRole: the API's queries run under the statement timeout and
// the workers' do not; beside workers the API has a pool of its own.
func TestPoolsByRole(t *testing.T) {
	t.Parallel()
	const timeout = 250 * time.Millisecond
	for _, tt := range []struct {
		name        string
		api, worker bool
	}{{"serve", true, true}, {"api", true, false}, {"worker", false, true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Config{API: tt.api, Worker: tt.worker, StatementTimeout: timeout})
			if tt.api {
				if got := statementTimeout(t, s.apiDB); got != "250ms" {
					t.Errorf("the API's statement_timeout is %q, want 250ms", got)
				}
				_, err := s.apiDB.Pool.Exec(context.Background(), `SELECT pg_sleep(2)`)
				if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "57014" {
					t.Errorf("a two-second query of the API: %v, want it cancelled by the statement timeout", err)
				}
			}
			if got := statementTimeout(t, s.db); tt.worker && got != "0" {
				t.Errorf("the workers' statement_timeout is %q, want none", got)
			}
			if tt.api && tt.worker && s.apiDB == s.db {
				t.Error("the API shares the workers' pool")
			}
		})
	}
}

// statementTimeout is the statement_timeout of a connection of db.
func statementTimeout(t *testing.T, db *storage.DB) string {
	t.Helper()
	var got string
	if err := db.Pool.QueryRow(context.Background(), `SHOW statement_timeout`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	return got
}

// get is the status of GET url.
func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body) //nolint:errcheck // only the status matters
	return resp.StatusCode
}

// TestListeners: /metrics is on the API's listener unless it has its own,
// and never on both; Go's profiles are served only when asked for, only on
// the metrics listener, and for as long as a profile is asked (past the
// write timeout: crier bench -profile asks for ten seconds).
func TestListeners(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name              string
		cfg               Config
		apiMetrics        bool // GET /metrics on the API's listener
		metrics, profiles bool // GET /metrics, /debug/pprof/ on the metrics listener
	}{
		{"api", Config{API: true}, true, false, false},
		{"api with metrics listener", Config{API: true, MetricsAddr: "127.0.0.1:0"}, false, true, false},
		{"api with profiles", Config{API: true, MetricsAddr: "127.0.0.1:0", PProf: true}, false, true, true},
		{"worker with profiles", Config{Worker: true, MetricsAddr: "127.0.0.1:0", PProf: true,
			RequestTimeout: 500 * time.Millisecond, WriteTimeout: time.Second}, false, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tt.cfg)
			want := func(ok bool) int {
				if ok {
					return http.StatusOK
				}
				return http.StatusNotFound
			}
			if s.ln != nil {
				api := "http://" + s.Addr()
				if got := get(t, api+"/metrics"); got != want(tt.apiMetrics) {
					t.Errorf("GET /metrics on the API's listener: %d, want %d", got, want(tt.apiMetrics))
				}
				if got := get(t, api+"/debug/pprof/"); got != http.StatusNotFound {
					t.Errorf("GET /debug/pprof/ on the API's listener: %d, want 404", got)
				}
			}
			if s.mln == nil {
				return
			}
			m := "http://" + s.mln.Addr().String()
			if got := get(t, m+"/metrics"); got != want(tt.metrics) {
				t.Errorf("GET /metrics on the metrics listener: %d, want %d", got, want(tt.metrics))
			}
			if got := get(t, m+"/debug/pprof/"); got != want(tt.profiles) {
				t.Errorf("GET /debug/pprof/ on the metrics listener: %d, want %d", got, want(tt.profiles))
			}
			if tt.profiles && tt.cfg.WriteTimeout != 0 {
				if got := get(t, m+"/debug/pprof/profile?seconds=2"); got != http.StatusOK {
					t.Errorf("a CPU profile longer than the write timeout: %d, want 200", got)
				}
			}
		})
	}
}

// TestListenerLimits: the API's listener refuses a header over
// MaxHeaderBytes and closes a kept-alive connection left idle.
func TestListenerLimits(t *testing.T) {
	t.Parallel()
	const idle = 500 * time.Millisecond
	s := startServer(t, Config{API: true, IdleTimeout: idle})
	req, err := http.NewRequest("GET", "http://"+s.Addr()+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Padding", strings.Repeat("a", 2*DefaultMaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a %d-byte header: %d, want 431", 2*DefaultMaxHeaderBytes, resp.StatusCode)
	}

	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET /healthz HTTP/1.1\r\nHost: crier\r\n\r\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("a request on a kept-alive connection: %v %v", resp, err)
	} else {
		io.Copy(io.Discard, resp.Body) //nolint:errcheck
		resp.Body.Close()
	}
	idleFrom := time.Now()
	c.SetReadDeadline(idleFrom.Add(idle + 5*time.Second)) //nolint:errcheck
	_, err = br.ReadByte()
	if ne := net.Error(nil); errors.As(err, &ne) && ne.Timeout() {
		t.Errorf("an idle connection still open after %v, want it closed after %v", time.Since(idleFrom), idle)
	}
}
