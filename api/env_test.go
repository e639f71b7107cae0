package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/internal/testenv"
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
	return newEnvWith(t, api.Config{Ready: ready})
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

// registered is PUT's answer for a new installation: the device and its
// secret.
type registered struct {
	api.Device
	Secret string `json:"device_secret"`
}

// dev makes a request about an installation with its device secret ("" for
// none) and decodes the answer into out (if not nil).
func (e *env) dev(method, inst, secret string, body, out any) int {
	e.t.Helper()
	h := http.Header{}
	if secret != "" {
		h.Set(api.DeviceSecretHeader, secret)
	}
	var raw string
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		raw = string(b)
		h.Set("Content-Type", "application/json")
	}
	status, _, answer, err := apiclient.Client{Base: e.base, Key: e.AppKey}.Send(context.Background(), method, "/v1/devices/"+inst, h, raw)
	if err != nil {
		e.t.Fatal(err)
	}
	if out != nil && len(answer) > 0 {
		if err := json.Unmarshal(answer, out); err != nil {
			e.t.Fatalf("%s %s: decode %q: %v", method, inst, answer, err)
		}
	}
	return status
}

// register makes a new installation and returns its secret, or fails t.
func (e *env) register(inst string, body any) string {
	e.t.Helper()
	var r registered
	if code := e.dev("PUT", inst, "", body, &r); code != http.StatusCreated {
		e.t.Fatalf("register %s: %d, want 201", inst, code)
	}
	if r.Secret == "" {
		e.t.Fatalf("register %s: no device secret in the answer", inst)
	}
	return r.Secret
}
