package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/publish"
	"github.com/crier-push/crier/storage"
)

// env is the API alone for one test, over a database of its own: a tenant
// with a municipality, two organisations and keys. Nothing sends: the
// dispatches the API enqueues are kept in queue, so the API's rules are
// tested where they live, without Redis, asynq or the emulator.
type env struct {
	t      *testing.T
	db     *storage.DB
	base   string
	queue  *queue
	tenant storage.Tenant
	muni   crier.Publisher
	// Publishers are the organisations and the keys.
	testenv.Publishers
}

// queue keeps the tasks the API enqueues, one per task id, as asynq does.
type queue struct {
	mu    sync.Mutex
	tasks map[string]*asynq.Task
	// down, when set, is the error every enqueue fails with.
	down error
}

func (q *queue) EnqueueContext(_ context.Context, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.down != nil {
		return nil, q.down
	}
	id := string(task.Payload())
	for _, o := range opts {
		if o.Type() == asynq.TaskIDOpt {
			id = o.Value().(string)
		}
	}
	if _, dup := q.tasks[id]; dup {
		return nil, asynq.ErrTaskIDConflict
	}
	q.tasks[id] = task
	return &asynq.TaskInfo{ID: id, Type: task.Type()}, nil
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.tasks)
}

// pinger is a readiness check that answers err.
type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

func newEnv(t *testing.T) *env { return newEnvReady(t, nil) }

// newEnvReady makes an env whose /readyz checks the database and ready.
func newEnvReady(t *testing.T, ready map[string]api.Pinger) *env {
	t.Helper()
	ctx := context.Background()
	db := testenv.DB(t)
	q := &queue{tasks: map[string]*asynq.Task{}}
	pub, err := publish.New(db, q, publish.Config{})
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]api.Pinger{"postgres": db}
	for k, v := range ready {
		checks[k] = v
	}
	h, err := api.New(db, pub, api.Config{Ready: checks})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e := &env{t: t, db: db, base: srv.URL, queue: q}
	e.tenant, err = db.CreateTenant(ctx, "sandefjord", "Sandefjord kommune", "Europe/Oslo")
	if err != nil {
		t.Fatal(err)
	}
	if e.muni, err = db.CreatePublisher(ctx, e.tenant.ID, "kommunen", "Sandefjord kommune", crier.RoleMunicipality); err != nil {
		t.Fatal(err)
	}
	e.Publishers = testenv.NewPublishers(t, db, e.tenant.ID, e.muni)
	return e
}

// on returns the env reporting to t, for use in subtests.
func (e *env) on(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// do sends a JSON request and decodes the JSON answer into out (if not nil).
func (e *env) do(method, path, key string, body any, out any) int {
	e.t.Helper()
	return testenv.Do(e.t, e.base, method, path, key, body, out)
}

// send makes a request with a raw body and headers and returns the status,
// the answer's headers and body.
func (e *env) send(method, path string, header http.Header, body string) (int, http.Header, []byte, error) {
	return apiclient.Client{Base: e.base}.Send(context.Background(), method, path, header, body)
}

// feed creates a feed of the tenant's publisher pub, or fails t.
func (e *env) feed(t *testing.T, pub crier.Publisher, slug, name string, mandatory bool) crier.Feed {
	t.Helper()
	return testenv.Feed(t, e.db, e.tenant.ID, pub.ID, slug, name, mandatory)
}

var errDown = errors.New("down")
