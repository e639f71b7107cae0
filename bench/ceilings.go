package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sync/errgroup"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/providers/apns"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/providers/fcm"
)

// drainServers is how many asynq servers share the queue in the second
// drain ceiling. Measured with 400 in flight and 100,000 tasks: 1 server
// 9.9–11.4k/s, 2 17–20k/s, 4 21k/s, 8 23–28k/s.
const drainServers = 8

// asynqCeiling is the rate at which servers asynq servers, concurrency
// tasks in flight in all, drain no-op tasks on this Redis; and the CPU each
// task took, in this process and in redis-server (redisPID), to dequeue and
// complete.
func asynqCeiling(ctx context.Context, opt asynq.RedisClientOpt, redisPID, n, servers, concurrency int) (rate, cpuMicros float64, err error) {
	payload := []byte(`{"p":1,"d":2,"t":3,"v":"fcm","k":"emu-ok-0"}`)
	return queueRun{opt: opt, redisPID: redisPID, queue: "ceiling", n: n, servers: servers, inFlight: concurrency,
		payload: func(int) []byte { return payload }, enqueueFirst: true}.run(ctx)
}

// queueRun is one ceiling measured through asynq: n tasks on a queue of
// their own, served by servers servers with inFlight handlers in all.
type queueRun struct {
	opt                  asynq.RedisClientOpt
	redisPID             int
	queue                string
	n, servers, inFlight int
	payload              func(i int) []byte // task i's payload
	// handle does a task's work (none if nil); an error fails the run
	// rather than retrying the task.
	handle func(ctx context.Context, payload []byte) error
	// enqueueFirst fills the queue before the servers start, so that the
	// run times the drain alone; otherwise eight goroutines enqueue while
	// the servers work.
	enqueueFirst bool
}

// run returns the tasks done per second, from the servers' start to the
// last task, and the CPU each task took in this process and in
// redis-server.
func (q queueRun) run(ctx context.Context) (rate, cpuMicros float64, err error) {
	c := asynq.NewClient(q.opt)
	defer c.Close()
	enqueue := func() error {
		g, gctx := errgroup.WithContext(ctx)
		per := (q.n + 7) / 8
		for w := 0; w < q.n; w += per {
			g.Go(func() error {
				for i := w; i < min(w+per, q.n); i++ {
					if _, err := c.EnqueueContext(gctx, asynq.NewTask("ceiling", q.payload(i)), asynq.Queue(q.queue)); err != nil {
						return err
					}
				}
				return nil
			})
		}
		return g.Wait()
	}
	if q.enqueueFirst {
		if err := enqueue(); err != nil {
			return 0, 0, err
		}
	}
	pids := map[string]int{"bench": os.Getpid(), "redis": q.redisPID}
	var done, failed atomic.Int64
	finished := make(chan struct{})
	var once sync.Once
	var end time.Time
	var after cpuSample
	handler := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if q.handle != nil {
			if err := q.handle(ctx, t.Payload()); err != nil {
				failed.Add(1)
			}
		}
		if done.Add(1) == int64(q.n) {
			once.Do(func() { end, after = time.Now(), sampleCPU(pids, q.n); close(finished) })
		}
		return nil
	})
	before := sampleCPU(pids, 0)
	start := time.Now()
	for range q.servers {
		srv := asynq.NewServer(q.opt, asynq.Config{Concurrency: q.inFlight / q.servers, Queues: map[string]int{q.queue: 1},
			TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.ErrorLevel})
		if err := srv.Start(handler); err != nil {
			return 0, 0, err
		}
		defer srv.Shutdown()
	}
	if !q.enqueueFirst {
		if err := enqueue(); err != nil {
			return 0, 0, err
		}
	}
	select {
	case <-finished:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	if f := failed.Load(); f > 0 {
		return 0, 0, fmt.Errorf("%d of %d tasks failed", f, q.n)
	}
	if c := cpuShare(before, after); c != nil {
		cpuMicros = c.MicrosPerPush["bench"] + c.MicrosPerPush["redis"]
	}
	return float64(q.n) / end.Sub(start).Seconds(), cpuMicros, nil
}

// clients are crier's own FCM and APNs clients, pointed at the emulator,
// for the ceilings that push.
type clients struct {
	fcm, apns sender
}

type sender interface {
	Send(context.Context, providers.Message) (string, error)
}

func newClients(ctx context.Context, emu *emulator.Emulator) (clients, error) {
	sa, err := emu.NewServiceAccount("ceiling")
	if err != nil {
		return clients{}, err
	}
	fc, err := fcm.New(ctx, fcm.Config{ProjectID: "ceiling", ServiceAccountJSON: sa, Endpoint: emu.FCMEndpoint()})
	if err != nil {
		return clients{}, err
	}
	p8, err := emu.NewAPNsKey("CEILTEAM01", "CEILKEY001", "no.ceiling.app")
	if err != nil {
		return clients{}, err
	}
	ac, err := apns.New(apns.Config{KeyP8: p8, KeyID: "CEILKEY001", TeamID: "CEILTEAM01", Topic: "no.ceiling.app",
		Host: emu.APNsHost(), RootCAs: emu.CACertPEM()})
	if err != nil {
		return clients{}, err
	}
	return clients{fcm: fc, apns: ac}, nil
}

// ceilingMessage is push i of a ceiling: every third one to an iOS device,
// as in the seeded mix.
func (c clients) message(i int) (sender, providers.Message) {
	ok := emulator.Behaviour{Kind: emulator.Accept}
	m := providers.Message{PostID: 1, DeviceID: int64(i), Title: "Benchmark", Body: "Til alle innbyggere.",
		Class: crier.ClassOfficial}
	if i%3 == 2 {
		m.Token = emulator.APNsToken(ok, uint64(i))
		return c.apns, m
	}
	m.Token = emulator.FCMToken(ok, fmt.Sprint("c", i))
	return c.fcm, m
}

// clientCeilings are the rates at which crier's own FCM and APNs clients
// push to the same emulator, inFlight at a time, with no queue, database
// or rate limit around them.
func clientCeilings(ctx context.Context, cl clients, n, inFlight int) (fcmRate, apnsRate float64, err error) {
	// step picks the pushes of one provider from the mix.
	push := func(step int) (float64, error) {
		var next atomic.Int64
		g, gctx := errgroup.WithContext(ctx)
		start := time.Now()
		for range inFlight {
			g.Go(func() error {
				for {
					k := int(next.Add(1))
					if k > n {
						return nil
					}
					s, m := cl.message(k*3 - step)
					if _, err := s.Send(gctx, m); err != nil {
						return fmt.Errorf("push %d: %w", k, err)
					}
				}
			})
		}
		if err := g.Wait(); err != nil {
			return 0, err
		}
		return float64(n) / time.Since(start).Seconds(), nil
	}
	if fcmRate, err = push(3); err != nil {
		return 0, 0, err
	}
	if apnsRate, err = push(1); err != nil {
		return 0, 0, err
	}
	return fcmRate, apnsRate, nil
}

// pipelineServers is how many asynq servers share the pipeline ceiling's
// sends. Measured with 400 in flight and 60,000 pushes: 1 server 3.8–4.2k/s
// (its dequeues are serial), 2 4.5k/s, 4 5.0–5.2k/s, 8 4.6k/s, 16 5.3k/s.
const pipelineServers = 4

// pipelineCeiling is the rate of the least an asynq sender with crier's
// clients must do for each push, with nothing of crier's around it: enqueue
// a task, dequeue it, push it through the FCM or APNs client (in the seeded
// mix) to the emulator, and complete it. servers asynq servers share the
// queue, inFlight sends at a time in all, while eight goroutines enqueue.
// cpuMicros is the CPU each push took in this process (asynq, the clients
// and the emulator) and in redis-server.
func pipelineCeiling(ctx context.Context, opt asynq.RedisClientOpt, redisPID int, cl clients, n, servers, inFlight int) (rate, cpuMicros float64, err error) {
	return queueRun{opt: opt, redisPID: redisPID, queue: "pipeline", n: n, servers: servers, inFlight: inFlight,
		payload: func(i int) []byte { return strconv.AppendInt(nil, int64(i), 10) },
		handle: func(ctx context.Context, payload []byte) error {
			i, err := strconv.Atoi(string(payload))
			if err != nil {
				return err
			}
			s, m := cl.message(i)
			_, err = s.Send(ctx, m)
			return err
		}}.run(ctx)
}
