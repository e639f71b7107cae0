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

// TestCLIBootstrapAndServe drives crier as an operator would: migrate,
// create a tenant pointed at an emulator, a publisher, a feed and keys
// through the commands, then serve on port 0 and publish a post through it.
func TestCLIBootstrapAndServe(t *testing.T) {
	t.Parallel()
	dbURL, _ := testenv.DBURL(t)
	rds := testenv.StartRedis(t)
	environ := map[string]string{"CRIER_DATABASE_URL": dbURL, "CRIER_REDIS_URL": rds.URL()}
	getenv := func(k string) string { return environ[k] }
	ctx := context.Background()
	crier := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := run(ctx, args, getenv, &out, &errOut); err != nil {
			t.Fatalf("crier %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
		}
		return out.String()
	}

	emu, err := emulator.New(emulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { emu.Close() })
	dir := t.TempDir()
	sa, err := emu.NewServiceAccount("cli-project")
	if err != nil {
		t.Fatal(err)
	}
	saFile := filepath.Join(dir, "sa.json")
	if err := os.WriteFile(saFile, sa, 0o600); err != nil {
		t.Fatal(err)
	}

	crier("migrate")
	crier("tenant", "create", "-slug", "larvik", "-name", "Larvik kommune")
	crier("tenant", "fcm", "-slug", "larvik", "-project", "cli-project", "-service-account", saFile, "-endpoint", emu.FCMEndpoint())
	if out := crier("tenant", "rate", "-slug", "larvik", "-provider", "fcm", "-per-second", "500"); !strings.Contains(out, "limited to 500") {
		t.Errorf("tenant rate: %q", out)
	}
	crier("publisher", "create", "-tenant", "larvik", "-slug", "kommunen", "-name", "Larvik kommune", "-role", "municipality")
	crier("feed", "create", "-tenant", "larvik", "-publisher", "kommunen", "-slug", "viktig", "-name", "Viktig", "-mandatory")
	pubKey := strings.TrimSpace(crier("key", "create", "-tenant", "larvik", "-publisher", "kommunen"))
	appKey := strings.TrimSpace(crier("key", "create", "-tenant", "larvik"))
	if !strings.HasPrefix(pubKey, "crier_publisher_") || !strings.HasPrefix(appKey, "crier_app_") {
		t.Fatalf("keys %q, %q", pubKey, appKey)
	}

	// Serve on port 0 and find the address in the log.
	logs := &syncBuffer{}
	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- run(srvCtx, []string{"serve", "-addr", "127.0.0.1:0"}, getenv, io.Discard, logs) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	addrRE := regexp.MustCompile(`msg="crier started".* addr=(\S+)`)
	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			base = "http://" + m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}

	req := func(method, path, key, body string) (int, []byte) {
		t.Helper()
		code, _, b, err := apiclient.Client{Base: base, Key: key}.Send(context.Background(), method, path,
			http.Header{"Content-Type": {"application/json"}}, body)
		if err != nil {
			t.Fatal(err)
		}
		return code, b
	}
	tok := emulator.FCMToken(emulator.Behaviour{Kind: emulator.Accept}, "cli")
	if code, b := req("PUT", "/v1/devices/phone", appKey, fmt.Sprintf(`{"provider":"fcm","token":%q}`, tok)); code != http.StatusCreated {
		t.Fatalf("register: %d %s", code, b)
	}
	code, b := req("POST", "/v1/posts", pubKey, `{"feed":"viktig","title":"Stengt vei","body":"Storgata er stengt."}`)
	if code != http.StatusAccepted {
		t.Fatalf("post: %d %s", code, b)
	}
	var created struct{ ID int64 }
	json.Unmarshal(b, &created) //nolint:errcheck // checked by the status below
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, b := req("GET", fmt.Sprintf("/v1/posts/%d", created.ID), pubKey, "")
		var st struct {
			State  string
			Counts map[string]int
		}
		json.Unmarshal(b, &st) //nolint:errcheck
		if st.State == "done" {
			if st.Counts["sent"] != 1 {
				t.Fatalf("counts %v: want 1 sent", st.Counts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("post not done: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
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
