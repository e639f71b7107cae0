package bench

import (
	"context"
	"fmt"
	"os"
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

// asynqCeiling is the rate at which one asynq server drains no-op tasks on
// this Redis: the most any asynq-based sender can do here; and the CPU each
// task took, in this process and in redis-server (redisPID), to dequeue and
// complete.
func asynqCeiling(ctx context.Context, opt asynq.RedisClientOpt, redisPID, n, concurrency int) (rate, cpuMicros float64, err error) {
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
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: concurrency, Queues: map[string]int{"ceiling": 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.ErrorLevel})
	start := time.Now()
	var end time.Time
	var after cpuSample
	if err := srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if done.Add(1) == int64(n) {
			once.Do(func() { end, after = time.Now(), sampleCPU(pids, n); close(finished) })
		}
		return nil
	})); err != nil {
		return 0, 0, err
	}
	select {
	case <-finished:
	case <-ctx.Done():
	}
	srv.Shutdown()
	if ctx.Err() != nil {
		return 0, 0, ctx.Err()
	}
	if c := cpuShare(before, after); c != nil {
		cpuMicros = c.MicrosPerPush["bench"] + c.MicrosPerPush["redis"]
	}
	return float64(n) / end.Sub(start).Seconds(), cpuMicros, nil
}

// clientCeilings are the rates at which crier's own FCM and APNs clients
// push to the same emulator, concurrency at a time, with no queue, database
// or rate limit around them.
func clientCeilings(ctx context.Context, emu *emulator.Emulator, cfg Config) (fcmRate, apnsRate float64, err error) {
	sa, err := emu.NewServiceAccount("ceiling")
	if err != nil {
		return 0, 0, err
	}
	fc, err := fcm.New(ctx, fcm.Config{ProjectID: "ceiling", ServiceAccountJSON: sa, Endpoint: emu.FCMEndpoint()})
	if err != nil {
		return 0, 0, err
	}
	p8, err := emu.NewAPNsKey("CEILTEAM01", "CEILKEY001", "no.ceiling.app")
	if err != nil {
		return 0, 0, err
	}
	ac, err := apns.New(apns.Config{KeyP8: p8, KeyID: "CEILKEY001", TeamID: "CEILTEAM01", Topic: "no.ceiling.app",
		Host: emu.APNsHost(), RootCAs: emu.CACertPEM()})
	if err != nil {
		return 0, 0, err
	}
	ok := emulator.Behaviour{Kind: emulator.Accept}
	push := func(s interface {
		Send(context.Context, providers.Message) (string, error)
	}, token func(i int) string) (float64, error) {
		n := cfg.CeilingTasks / 2
		var next atomic.Int64
		g, gctx := errgroup.WithContext(ctx)
		start := time.Now()
		for range cfg.Concurrency {
			g.Go(func() error {
				for {
					i := int(next.Add(1))
					if i > n {
						return nil
					}
					m := providers.Message{PostID: 1, DeviceID: int64(i), Token: token(i), Title: "Benchmark",
						Body: "Til alle innbyggere.", Class: providers.ClassOfficial}
					if _, err := s.Send(gctx, m); err != nil {
						return fmt.Errorf("push %d: %w", i, err)
					}
				}
			})
		}
		if err := g.Wait(); err != nil {
			return 0, err
		}
		return float64(n) / time.Since(start).Seconds(), nil
	}
	if fcmRate, err = push(fc, func(i int) string { return emulator.FCMToken(ok, fmt.Sprint("c", i)) }); err != nil {
		return 0, 0, err
	}
	if apnsRate, err = push(ac, func(i int) string { return emulator.APNsToken(ok, uint64(i)) }); err != nil {
		return 0, 0, err
	}
	return fcmRate, apnsRate, nil
}
