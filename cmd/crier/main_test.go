package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
)

// syncBuffer is a bytes.Buffer safe to write from the server's goroutines
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// cli runs crier's commands in this process, as an operator would, on a
// fresh database and a private Redis.
type cli struct {
	t      *testing.T
	dbURL  string
	getenv env
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	dbURL, _ := testenv.DBURL(t)
	rds := testenv.StartRedis(t)
	environ := map[string]string{"CRIER_DATABASE_URL": dbURL, "CRIER_REDIS_URL": rds.URL(), "CRIER_SECRET_KEY": testenv.SecretKey}
	return &cli{t: t, dbURL: dbURL, getenv: func(k string) string { return environ[k] }}
}

// run runs one command and returns what it printed; a command that fails
// fails the test.
func (c *cli) run(args ...string) string {
	c.t.Helper()
	var out, errOut bytes.Buffer
	if err := run(context.Background(), args, c.getenv, &out, &errOut); err != nil {
		c.t.Fatalf("crier %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// serve runs `crier serve` on port 0 until the test ends, and returns the
// API's base URL.
func (c *cli) serve() string {
	c.t.Helper()
	logs := &syncBuffer{}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve", "-addr", "127.0.0.1:0"}, c.getenv, io.Discard, logs) }()
	c.t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			c.t.Errorf("serve: %v", err)
		}
	})
	return started(c.t, logs, nil)
}

var startedRE = regexp.MustCompile(`msg="crier started".* addr=(\S+)`)

// started waits for crier serve to log its start, and returns the API's
// base URL from the log; exited, if not nil, ends the wait early, and the
// test, when the process stops first.
func started(t *testing.T, logs *syncBuffer, exited <-chan error) string {
	t.Helper()
	var base string
	testenv.Eventually(t, time.Minute, 10*time.Millisecond, func() error {
		select {
		case err := <-exited:
			t.Fatalf("crier serve exited before it started: %v", err)
		default:
		}
		m := startedRE.FindStringSubmatch(logs.String())
		if m == nil {
			return fmt.Errorf("crier serve has not logged its start:\n%s", logs.String())
		}
		base = "http://" + m[1]
		return nil
	})
	return base
}

// request sends a JSON body (or none) with key to the API at base, and
// returns the status and the answer's body.
func request(t *testing.T, base, method, path, key, body string) (int, []byte) {
	t.Helper()
	code, _, b, err := apiclient.Client{Base: base, Key: key}.Send(context.Background(), method, path,
		http.Header{"Content-Type": {"application/json"}}, body)
	if err != nil {
		t.Fatal(err)
	}
	return code, b
}

// TestCLIBootstrapAndServe drives crier as an operator would: migrate,
// create a tenant pointed at an emulator, a publisher, a feed and keys
// through the commands, then serve on port 0 and publish a post through it.
func TestCLIBootstrapAndServe(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	emu := testenv.StartEmulator(t, emulator.Config{})
	dir := t.TempDir()
	sa, err := emu.NewServiceAccount("cli-project")
	if err != nil {
		t.Fatal(err)
	}
	saFile := filepath.Join(dir, "sa.json")
	if err := os.WriteFile(saFile, sa, 0o600); err != nil {
		t.Fatal(err)
	}

	c.run("migrate")
	c.run("tenant", "create", "-slug", "larvik", "-name", "Larvik kommune")
	c.run("tenant", "fcm", "-slug", "larvik", "-project", "cli-project", "-service-account", saFile, "-endpoint", emu.FCMEndpoint())
	if out := c.run("tenant", "rate", "-slug", "larvik", "-provider", "fcm", "-per-second", "500"); !strings.Contains(out, "limited to 500") {
		t.Errorf("tenant rate: %q", out)
	}
	if out := c.run("tenant", "alerts", "-slug", "larvik", "-approval", "-approval-ttl", "20m", "-language", "nn"); !strings.Contains(out,
		"approval true (lapse after 20m0s), default language nn") {
		t.Errorf("tenant alerts: %q", out)
	}
	if out := c.run("tenant", "alerts", "-slug", "larvik"); !strings.Contains(out, "approval false (lapse after 30m0s), default language nb") {
		t.Errorf("tenant alerts with the defaults: %q", out)
	}
	if out := c.run("audit", "-tenant", "larvik"); strings.Count(out, "tenant.alert_rules") != 2 {
		t.Errorf("the audit log does not hold both changes of the alert rules:\n%s", out)
	}
	c.run("publisher", "create", "-tenant", "larvik", "-slug", "kommunen", "-name", "Larvik kommune", "-role", "municipality")
	c.run("feed", "create", "-tenant", "larvik", "-publisher", "kommunen", "-slug", "viktig", "-name", "Viktig", "-mandatory")
	pubKey := strings.TrimSpace(c.run("key", "create", "-tenant", "larvik", "-publisher", "kommunen"))
	appKey := strings.TrimSpace(c.run("key", "create", "-tenant", "larvik"))
	if !strings.HasPrefix(pubKey, "crier_publisher_") || !strings.HasPrefix(appKey, "crier_app_") {
		t.Fatalf("keys %q, %q", pubKey, appKey)
	}

	// Serve on port 0 and find the address in the log.
	base := c.serve()
	tok := emulator.FCMToken(emulator.Behaviour{Kind: emulator.Accept}, "cli")
	if code, b := request(t, base, "PUT", "/v1/devices/phone", appKey, fmt.Sprintf(`{"provider":"fcm","token":%q}`, tok)); code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, b)
	}
	code, b := request(t, base, "POST", "/v1/posts", pubKey, `{"feed":"viktig","title":"Stengt vei","body":"Storgata er stengt."}`)
	if code != http.StatusAccepted {
		t.Fatalf("post: %d %s", code, b)
	}
	var created struct{ ID int64 }
	json.Unmarshal(b, &created) //nolint:errcheck // checked by the status below
	var counts map[string]int
	testenv.Eventually(t, 30*time.Second, 20*time.Millisecond, func() error {
		_, b := request(t, base, "GET", fmt.Sprintf("/v1/posts/%d", created.ID), pubKey, "")
		var st struct {
			State  string
			Counts map[string]int
		}
		json.Unmarshal(b, &st) //nolint:errcheck
		if st.State != "done" {
			return fmt.Errorf("post not done: %s", b)
		}
		counts = st.Counts
		return nil
	})
	if counts["sent"] != 1 {
		t.Fatalf("counts %v: want 1 sent", counts)
	}
	if recs := emu.RecordsFor(tok); len(recs) != 1 || !recs[0].Accepted() {
		t.Fatalf("emulator records for the device: %+v", recs)
	}
}

// TestCLIErrors: the commands say what is wrong.
func TestCLIErrors(t *testing.T) {
	t.Parallel()
	getenv := func(string) string { return "" }
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"tenant"}, "want a subcommand"},
		{[]string{"tenant", "create", "-slug", "x"}, "missing -name"},
		{[]string{"publisher", "create", "-tenant", "x", "-slug", "y", "-name", "z", "-role", "king"}, "-role must be municipality or organisation"},
		{[]string{"key"}, "key create"},
		{[]string{"tenant", "alerts", "-slug", "x", "-approval-ttl", "10s"}, "between 1m and 24h"},
		{[]string{"tenant", "alerts", "-slug", "x", "-language", "no way"}, "no language tag"},
	}
	for _, c := range cases {
		err := run(context.Background(), c.args, getenv, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("crier %v: error %v, want it to say %q", c.args, err, c.want)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"help"}, getenv, &out, io.Discard); err != nil || !strings.Contains(out.String(), "serve") {
		t.Errorf("help: %v %q", err, out.String())
	}
}
