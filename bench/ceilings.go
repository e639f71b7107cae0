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
	c := asynq.NewClient(opt)
	defer c.Close()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	per := (n + 7) / 8
	for w := 0; w < n; w += per {
		g.Go(func() error {
			for i := w; i < min(w+per, n); i++ {
				if _, err := c.EnqueueContext(gctx, asynq.NewTask("noop", []byte(`{"p":1,"d":2,"t":3,"v":"fcm","k":"emu-ok-0"}`)),
					asynq.Queue("ceiling")); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	pids := map[string]int{"bench": os.Getpid(), "redis": redisPID}
	before := sampleCPU(pids, 0)
	var done atomic.Int64
	finished := make(chan struct{})
	var once sync.Once
	start := time.Now()
	var end time.Time
	var after cpuSample
	handler := asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(n) {
			once.Do(func() { end, after = time.Now(), sampleCPU(pids, n); close(finished) })
		}
		return nil
	})
	for range servers {
		srv := asynq.NewServer(opt, asynq.Config{Concurrency: concurrency / servers, Queues: map[string]int{"ceiling": 1},
			TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.ErrorLevel})
		if err := srv.Start(handler); err != nil {
			return 0, 0, err
		}
		defer srv.Shutdown()
	}
	select {
	case <-finished:
	case <-ctx.Done():
	}
	if ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	if c := cpuShare(before, after); c != nil {
		cpuMicros = c.MicrosPerPush["bench"] + c.MicrosPerPush["redis"]
	}
	return float64(n) / end.Sub(start).Seconds(), cpuMicros, nil
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
		Class: providers.ClassOfficial}
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
// queue, inFlight sends at a time in all, while eight goroutines enqueue. cpuMicros is the CPU
// each push took in this process (asynq, the clients and the emulator) and
// in redis-server.
func pipelineCeiling(ctx context.Context, opt asynq.RedisClientOpt, redisPID int, cl clients, n, servers, inFlight int) (rate, cpuMicros float64, err error) {
	c := asynq.NewClient(opt)
	defer c.Close()
	pids := map[string]int{"bench": os.Getpid(), "redis": redisPID}
	var done, failed atomic.Int64
	finished := make(chan struct{})
	var once sync.Once
	var end time.Time
	var after cpuSample
	handler := asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		i, err := strconv.Atoi(string(t.Payload()))
		if err != nil {
			return err
		}
		s, m := cl.message(i)
		if _, err := s.Send(ctx, m); err != nil {
			failed.Add(1)
		}
		if done.Add(1) == int64(n) {
			once.Do(func() { end, after = time.Now(), sampleCPU(pids, n); close(finished) })
		}
		return nil
	})
	before := sampleCPU(pids, 0)
	start := time.Now()
	for range servers {
		srv := asynq.NewServer(opt, asynq.Config{Concurrency: inFlight / servers, Queues: map[string]int{"pipeline": 1},
			TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.ErrorLevel})
		if err := srv.Start(handler); err != nil {
			return 0, 0, err
		}
		defer srv.Shutdown()
	}
	g, gctx := errgroup.WithContext(ctx)
	per := (n + 7) / 8
	for w := 0; w < n; w += per {
		g.Go(func() error {
			for i := w; i < min(w+per, n); i++ {
				if _, err := c.EnqueueContext(gctx, asynq.NewTask("push", strconv.AppendInt(nil, int64(i), 10)),
					asynq.Queue("pipeline")); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, 0, err
	}
	select {
	case <-finished:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	if f := failed.Load(); f > 0 {
		return 0, 0, fmt.Errorf("%d of %d pushes failed", f, n)
	}
	if c := cpuShare(before, after); c != nil {
		cpuMicros = c.MicrosPerPush["bench"] + c.MicrosPerPush["redis"]
	}
	return float64(n) / end.Sub(start).Seconds(), cpuMicros, nil
}
