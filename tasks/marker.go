package tasks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Marker is the key crier keeps in Redis to notice that Redis lost its
// data (restarted without persistence, FLUSHALL, replaced): a hash with
// the generation, a random name of this life of Redis, and the generation
// whose tasks were queued again from Postgres. With the key gone, every
// task is gone too. The reconciler (dispatcher.Reconciler) looks at it every
// few seconds; a dispatch looks at it between pages.
type Marker struct {
	rdb redis.UniversalClient
}

// NewMarker makes the Marker of a Redis.
func NewMarker(rdb redis.UniversalClient) *Marker { return &Marker{rdb: rdb} }

// markerKey holds the fields generation and recovered. One key, so that it
// is lost whole, and one slot in a Redis Cluster.
const markerKey = "crier:redis"

// Generation is the name of Redis's current life, "" when the marker is
// gone: Redis lost its data and nobody has noticed yet.
func (m *Marker) Generation(ctx context.Context) (string, error) {
	gen, err := m.rdb.HGet(ctx, markerKey, "generation").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read redis generation: %w", err)
	}
	return gen, nil
}

// State reads the generation and the generation whose open work was queued
// again; they differ ("" included) when Redis lost its data and the
// recovery has not finished.
func (m *Marker) State(ctx context.Context) (generation, recovered string, err error) {
	vals, err := m.rdb.HMGet(ctx, markerKey, "generation", "recovered").Result()
	if err != nil {
		return "", "", fmt.Errorf("read redis generation: %w", err)
	}
	generation, _ = vals[0].(string)
	recovered, _ = vals[1].(string)
	return generation, recovered, nil
}

// Begin names a new life of Redis and returns its name. Call it before
// queueing the open work again: a loss during the recovery then takes the
// new name with it, and is noticed.
func (m *Marker) Begin(ctx context.Context) (string, error) {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
	gen := hex.EncodeToString(b[:])
	if err := m.rdb.HSet(ctx, markerKey, "generation", gen).Err(); err != nil {
		return "", fmt.Errorf("name redis generation: %w", err)
	}
	return gen, nil
}

// Finish records that the open work of generation gen is queued again.
func (m *Marker) Finish(ctx context.Context, gen string) error {
	if err := m.rdb.HSet(ctx, markerKey, "recovered", gen).Err(); err != nil {
		return fmt.Errorf("mark redis generation %s recovered: %w", gen, err)
	}
	return nil
}

// allQueues is asynq's set of queue names (its base.AllQueues), which its
// Inspector reads to know a queue. An asynq Client adds a queue to it on
// its first enqueue only, so after a loss the set would miss the queues
// until every process restarted: the queue metrics and the emergency
// Holder's watch would not see them.
const allQueues = "asynq:queues"

// RegisterQueues puts crier's queues back in asynq's set of queues.
func (m *Marker) RegisterQueues(ctx context.Context) error {
	var names []any
	for q := range Queues() {
		names = append(names, q)
	}
	if err := m.rdb.SAdd(ctx, allQueues, names...).Err(); err != nil {
		return fmt.Errorf("register queues: %w", err)
	}
	return nil
}
