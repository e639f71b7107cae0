package tasks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/crier-push/crier/internal/configcheck"
)

// Rescuer brings back, within seconds, the tasks of a worker process that
// died holding them. asynq 0.26 gives a running task a lease of 30 s that
// the worker's heartbeat extends every 5 s, and takes a task back only once
// its lease has been expired for 30 s, looking once a minute: an alert's
// send held by a killed worker waited a minute or more, and asynq has no
// setting for either. The Rescuer, run by every worker process, looks every
// Interval for tasks whose lease has not been extended for Stale (two
// heartbeats missed) and puts each back at the head of its queue, counted
// as a retry, the way asynq's recoverer would: the same task id (so a
// dispatch queueing the send again is refused), and a retry count that
// makes the worker check the delivery before it pushes (the dead run may
// have pushed and recorded without acknowledging). asynq never recovers it
// again: it is no longer in the lease set.
type Rescuer struct {
	rdb redis.UniversalClient
	cfg RescuerConfig
}

// RescuerConfig tunes a Rescuer.
type RescuerConfig struct {
	// Queues are the queues looked at; default the emergency queue.
	Queues []string
	// Interval is how often they are looked at; default
	// DefaultRescueInterval.
	Interval time.Duration
	// Stale is how long a lease may go without being extended before its
	// task is taken back; default DefaultRescueStale. asynq extends leases
	// every 5 s, so it must be longer than that with a margin, or a busy
	// worker's tasks would be taken while it runs them.
	Stale  time.Duration
	Logger *slog.Logger
}

// Defaults of the RescuerConfig.
const (
	DefaultRescueInterval = time.Second
	DefaultRescueStale    = 10 * time.Second
)

// asynqHeartbeat and asynqLease are asynq 0.26's heartbeat interval and
// lease duration (server.go, internal/rdb.LeaseDuration): neither can be
// set.
const (
	asynqHeartbeat = 5 * time.Second
	asynqLease     = 30 * time.Second
)

// WithDefaults fills in the zero fields.
func (c RescuerConfig) WithDefaults() RescuerConfig {
	if len(c.Queues) == 0 {
		c.Queues = []string{QueueEmergency}
	}
	c.Interval = cmp.Or(c.Interval, DefaultRescueInterval)
	c.Stale = cmp.Or(c.Stale, DefaultRescueStale)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c RescuerConfig) validate() error {
	return configcheck.First("rescuer config",
		configcheck.Positive("Interval", c.Interval),
		configcheck.If(c.Stale <= asynqHeartbeat || c.Stale >= asynqLease,
			"Stale %v: must be between asynq's heartbeat (%v) and its lease (%v)", c.Stale, asynqHeartbeat, asynqLease),
	)
}

// NewRescuer makes a Rescuer.
func NewRescuer(rdb redis.UniversalClient, cfg RescuerConfig) (*Rescuer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Rescuer{rdb: rdb, cfg: cfg}, nil
}

// Run rescues every Interval until ctx ends.
func (r *Rescuer) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := r.Rescue(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			r.cfg.Logger.Warn("rescue orphaned tasks", slog.Any("error", err))
		case err == nil:
			failing = false
		}
		if n > 0 {
			r.cfg.Logger.Info("orphaned tasks queued again", slog.Int("tasks", n))
		}
	}
}

// rescueBatch bounds the tasks one look takes back per queue; the next look
// takes the rest.
const rescueBatch = 1000

// Rescue takes back, once, the tasks whose lease has gone stale, and
// returns how many.
func (r *Rescuer) Rescue(ctx context.Context) (int, error) {
	rescued := 0
	var errs []error
	for _, q := range r.cfg.Queues {
		n, err := r.rescueQueue(ctx, q)
		rescued += n
		if err != nil {
			errs = append(errs, fmt.Errorf("queue %s: %w", q, err))
		}
	}
	return rescued, errors.Join(errs...)
}

func (r *Rescuer) rescueQueue(ctx context.Context, q string) (int, error) {
	p := "asynq:{" + q + "}:"
	// A lease's score is its expiry in Unix seconds, asynqLease after it
	// was last extended.
	maxScore := time.Now().Add(asynqLease - r.cfg.Stale).Unix()
	ids, err := r.rdb.ZRangeByScore(ctx, p+"lease", &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(maxScore),
		Count: rescueBatch}).Result()
	if err != nil {
		return 0, fmt.Errorf("read leases: %w", err)
	}
	n := 0
	for _, id := range ids {
		key := p + "t:" + id
		msg, err := r.rdb.HGet(ctx, key, "msg").Bytes()
		if errors.Is(err, redis.Nil) {
			continue // done meanwhile
		}
		if err != nil {
			return n, fmt.Errorf("read task %s: %w", id, err)
		}
		again, err := retriedOnce(msg, id, q)
		if err != nil {
			return n, err
		}
		ok, err := rescueCmd.Run(ctx, r.rdb, []string{p + "active", p + "lease", key, p + "pending"},
			id, maxScore, msg, again, time.Now().UnixNano()).Int()
		if err != nil {
			return n, fmt.Errorf("queue task %s again: %w", id, err)
		}
		n += ok
	}
	return n, nil
}

// rescueCmd puts an orphaned task back at the head of its pending list
// (asynq dequeues with RPOPLPUSH, from the right) with its message counted
// as retried, if it is still active with the same stale lease and message:
// otherwise its worker finished it or extended the lease meanwhile, or
// another Rescuer came first. The keys share the queue's hash tag, so one
// Redis Cluster slot.
//
// KEYS: asynq:{q}:active, asynq:{q}:lease, asynq:{q}:t:<id>, asynq:{q}:pending
// ARGV: id, the stale score, the message read, the message retried, now (ns)
var rescueCmd = redis.NewScript(`
local score = redis.call("ZSCORE", KEYS[2], ARGV[1])
if not score or tonumber(score) > tonumber(ARGV[2]) then
	return 0
end
if redis.call("HGET", KEYS[3], "msg") ~= ARGV[3] then
	return 0
end
if redis.call("LREM", KEYS[1], 0, ARGV[1]) == 0 then
	return 0
end
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("HSET", KEYS[3], "msg", ARGV[4], "state", "pending", "pending_since", ARGV[5])
redis.call("RPUSH", KEYS[4], ARGV[1])
return 1`)

// Field numbers of asynq 0.26's TaskMessage (internal/proto/asynq.proto).
const (
	msgID      protowire.Number = 3
	msgQueue   protowire.Number = 4
	msgRetried protowire.Number = 6
)

// retriedOnce returns an asynq task message with its retry count one up,
// as asynq's recoverer counts a run whose lease expired. It refuses a
// message that is not the task's (id and queue), so that a change of
// asynq's encoding is noticed rather than written.
func retriedOnce(msg []byte, id, queue string) ([]byte, error) {
	out := make([]byte, 0, len(msg)+2)
	var retried uint64
	var gotID, gotQueue string
	for b := msg; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, fmt.Errorf("task %s: decode message: %w", id, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return nil, fmt.Errorf("task %s: decode message: %w", id, protowire.ParseError(m))
		}
		field, value := b[:n+m], b[n:n+m]
		b = b[n+m:]
		switch {
		case num == msgRetried && typ == protowire.VarintType:
			retried, _ = protowire.ConsumeVarint(value)
			continue
		case num == msgID && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(value)
			gotID = string(v)
		case num == msgQueue && typ == protowire.BytesType:
			v, _ := protowire.ConsumeBytes(value)
			gotQueue = string(v)
		}
		out = append(out, field...)
	}
	if gotID != id || gotQueue != queue {
		return nil, fmt.Errorf("task %s: its message names task %q of queue %q: asynq's encoding changed", id, gotID, gotQueue)
	}
	out = protowire.AppendTag(out, msgRetried, protowire.VarintType)
	return protowire.AppendVarint(out, retried+1), nil
}
