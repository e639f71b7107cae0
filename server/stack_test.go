package server_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/server"
	"github.com/crier-push/crier/storage"
)

// stack is a whole crier for one test: its own database and Redis, the
// emulator, one tenant with a municipality, an organisation and keys, and a
// running server.
type stack struct {
	t      *testing.T
	db     *storage.DB
	emu    *emulator.Emulator
	base   string
	tenant storage.Tenant
	muni   crier.Publisher
	// Publishers are the organisations and the keys.
	testenv.Publishers
	redisOpt asynq.RedisClientOpt
	// secrets are the devices' secrets, kept as their apps keep them.
	secrets *apiclient.DeviceSecrets
}

func newStack(t *testing.T) *stack {
	t.Helper()
	return newStackWith(t, server.Config{})
}

// newStackWith starts a stack whose server config starts from cfg.
func newStackWith(t *testing.T, cfg server.Config) *stack {
	t.Helper()
	return newStackOpts(t, cfg, emulator.Config{})
}

// newStackOpts starts a stack from a server and an emulator config.
func newStackOpts(t *testing.T, cfg server.Config, emuCfg emulator.Config) *stack {
	t.Helper()
	ctx := context.Background()
	dbURL, _ := testenv.DBURL(t)
	rds := testenv.StartRedis(t)

	emu := testenv.StartEmulator(t, emuCfg)

	cfg.DatabaseURL, cfg.RedisURL, cfg.HTTPAddr = dbURL, rds.URL(), "127.0.0.1:0"
	cfg.Secrets = testenv.Secrets()
	cfg.Concurrency, cfg.ShutdownTimeout = 20, 5*time.Second
	// Two asynq servers a group are plenty for 20 sends, and every idle
	// server polls Redis: the suite runs many stacks at once.
	if cfg.QueueServers == 0 {
		cfg.QueueServers = 2
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("server run: %v", err)
		}
		srv.Close()
	})
	// Runs first (cleanups run last in, first out), while the server runs.
	t.Cleanup(func() { checkDeliveryCounts(t, srv.DB()) })

	s := &stack{t: t, db: srv.DB(), emu: emu, base: "http://" + srv.Addr(), redisOpt: rds.AsynqOpt(),
		secrets: apiclient.NewDeviceSecrets()}
	db := s.db
	s.tenant, s.muni = testenv.EmulatorTenant(t, db, emu)
	s.Publishers = testenv.NewPublishers(t, db, s.tenant.ID, s.muni)
	return s
}

// do sends a JSON request and decodes the JSON answer into out (if not nil).
// A device's requests carry its secret, as its app sends it.
func (s *stack) do(method, path, key string, body any, out any) int {
	s.t.Helper()
	status, err := apiclient.Client{Base: s.base, Key: key, Secrets: s.secrets}.Do(context.Background(), method, path, body, out)
	if err != nil {
		s.t.Fatal(err)
	}
	return status
}

// send makes a request with a raw body and headers and returns the status,
// the answer's headers and body.
func (s *stack) send(method, path string, header http.Header, body string) (int, http.Header, []byte, error) {
	return apiclient.Client{Base: s.base}.Send(context.Background(), method, path, header, body)
}

// eventually polls f until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	testenv.Eventually(t, d, 20*time.Millisecond, f)
}

var errNotYet = errors.New("not yet")

// insertDevices adds n devices following the feeds straight into the
// database (quicker than the API for big audiences): two in three FCM, one
// in three APNs, all with accepting emulator tokens. It returns the tokens.
func (s *stack) insertDevices(prefix string, n int, follows []int64) []string {
	s.t.Helper()
	ok := emulator.Behaviour{Kind: emulator.Accept}
	rows := make([][]any, n)
	tokens := make([]string, n)
	for i := range n {
		prov, plat, tok := "fcm", "android", emulator.FCMToken(ok, fmt.Sprintf("%s%d", prefix, i))
		if i%3 == 2 {
			prov, plat, tok = "apns", "ios", emulator.APNsToken(ok, uint64(i+1)<<20|uint64(len(prefix)))
		}
		tokens[i] = tok
		rows[i] = []any{s.tenant.ID, fmt.Sprintf("%s%d", prefix, i), prov, plat, tok, follows}
	}
	if _, err := s.db.Pool.CopyFrom(context.Background(), pgx.Identifier{"devices"},
		[]string{"tenant_id", "installation_id", "provider", "platform", "token", "follows"}, pgx.CopyFromRows(rows)); err != nil {
		s.t.Fatal(err)
	}
	return tokens
}

// checkDeliveryCounts compares the counts the deliveries' triggers keep with
// the deliveries themselves, in one snapshot: after whatever a test did
// (retries, dead tokens, quiet hours, cancels, expiry), they must agree.
func checkDeliveryCounts(t *testing.T, db *storage.DB) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Errorf("check delivery counts: %v", err)
		return
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read only
	rows, err := tx.Query(ctx, `SELECT post_id, state, a.n, b.n, a.f, b.f, a.l, b.l
		FROM (SELECT post_id, state, count(*) AS n, min(sent_at) AS f, max(sent_at) AS l
		      FROM deliveries GROUP BY post_id, state) a
		FULL JOIN (SELECT post_id, state, sum(n)::bigint AS n, min(first_sent_at) AS f, max(last_sent_at) AS l
		      FROM delivery_counts GROUP BY post_id, state HAVING sum(n) <> 0) b USING (post_id, state)
		WHERE a.n IS DISTINCT FROM b.n OR a.f IS DISTINCT FROM b.f OR a.l IS DISTINCT FROM b.l`)
	if err != nil {
		t.Errorf("check delivery counts: %v", err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var post int64
		var state string
		var counted, kept *int64
		var f1, f2, l1, l2 *time.Time
		if err := rows.Scan(&post, &state, &counted, &kept, &f1, &f2, &l1, &l2); err != nil {
			t.Errorf("check delivery counts: %v", err)
			return
		}
		t.Errorf("post %d, %s: %v deliveries, %v counted (sent %v..%v, counted %v..%v)", post, state,
			deref(counted), deref(kept), deref(f1), deref(l1), deref(f2), deref(l2))
	}
	if err := rows.Err(); err != nil {
		t.Errorf("check delivery counts: %v", err)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// feed creates a feed of the tenant's publisher pub, or fails t.
func (s *stack) feed(t *testing.T, pub crier.Publisher, slug, name string, mandatory bool) crier.Feed {
	t.Helper()
	return testenv.Feed(t, s.db, s.tenant.ID, pub.ID, slug, name, mandatory)
}

// on returns the stack reporting to t, for use in subtests: s.do must fail
// the subtest that called it, from that subtest's goroutine.
func (s *stack) on(t *testing.T) *stack {
	c := *s
	c.t = t
	return &c
}
