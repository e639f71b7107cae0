package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/crier-push/crier"
	"github.com/crier-push/crier/areas"
	"github.com/crier-push/crier/internal/apiclient"
	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/secrets"
	"github.com/crier-push/crier/storage"
)

// Config says how big a run is and how crier runs in it.
type Config struct {
	// AdminDatabaseURL is the PostgreSQL server the run makes its own
	// database on (crier_bench_run_<pid>, dropped at the end).
	AdminDatabaseURL string
	// Binary is the crier executable started as the api and worker
	// processes.
	Binary string
	// Municipalities is the GeoJSON of the Norwegian municipalities.
	Municipalities []byte

	Devices int // default DefaultDevices
	// Tenants is how many tenants share the devices, from 1 to 10: each
	// after the first has a tenth of them. Default DefaultTenants, so the
	// first has 80 %.
	Tenants     int
	Workers     int           // crier worker processes; default DefaultWorkers
	Concurrency int           // sends in flight per worker; default DefaultConcurrency
	Latency     time.Duration // the emulator's answer time; default DefaultLatency
	// AlertDevices is the size of the alert sent behind the broadcast;
	// default DefaultAlertDevices (or an eighth of the first tenant, if
	// smaller).
	AlertDevices int
	// CeilingTasks is how many tasks and pushes the ceilings are measured
	// with; default DefaultCeilingTasks (or Devices, if smaller).
	CeilingTasks int

	// ProfileFile, if set, receives a 10 s CPU profile of the first worker
	// taken while the broadcast is in full flow, and ProfileFile+".bench"
	// one of this process (the emulator and the measuring) over the same
	// seconds.
	ProfileFile string

	Progress io.Writer // the progress bar; nil for none
	Logger   *slog.Logger
}

// Defaults of the Config.
const (
	DefaultDevices      = 1_000_000
	DefaultTenants      = 3
	DefaultWorkers      = 2
	DefaultConcurrency  = 200
	DefaultLatency      = 20 * time.Millisecond
	DefaultAlertDevices = 100_000
	DefaultCeilingTasks = 100_000
)

// maxTenants: each tenant after the first has a tenth of the devices.
const maxTenants = 10

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.Devices = cmp.Or(c.Devices, DefaultDevices)
	c.Tenants = cmp.Or(c.Tenants, DefaultTenants)
	c.Workers = cmp.Or(c.Workers, DefaultWorkers)
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	c.Latency = cmp.Or(c.Latency, DefaultLatency)
	c.AlertDevices = cmp.Or(c.AlertDevices, min(DefaultAlertDevices, c.tenantDevices(0)/8))
	c.CeilingTasks = cmp.Or(c.CeilingTasks, min(DefaultCeilingTasks, c.Devices))
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate refuses a config a run cannot be made with, naming the field,
// before anything is started or seeded.
func (c Config) validate() error {
	return configcheck.First("bench config",
		configcheck.Required("AdminDatabaseURL", c.AdminDatabaseURL),
		configcheck.Required("Binary", c.Binary),
		configcheck.Required("Municipalities", c.Municipalities),
		configcheck.Positive("Devices", c.Devices),
		configcheck.If(c.Tenants < 1 || c.Tenants > maxTenants, "Tenants %d: must be from 1 to %d", c.Tenants, maxTenants),
		configcheck.Positive("Workers", c.Workers),
		configcheck.Positive("Concurrency", c.Concurrency),
		configcheck.NotNegative("Latency", c.Latency),
		configcheck.NotNegative("AlertDevices", c.AlertDevices),
		// Only the default can be zero: an eighth of too few.
		configcheck.If(c.AlertDevices == 0, "Devices %d: too few for an alert (the first tenant has %d, under 8)",
			c.Devices, c.tenantDevices(0)),
		configcheck.NotNegative("CeilingTasks", c.CeilingTasks),
	)
}

// tenantDevices is how many devices tenant i gets: a tenth for each after
// the first, the rest for the first.
func (c Config) tenantDevices(i int) int {
	if i == 0 {
		return c.Devices - (c.Tenants-1)*(c.Devices/10)
	}
	return c.Devices / 10
}

// Result is what a run measured. Durations are in seconds in JSON.
type Result struct {
	Devices     int     `json:"devices"`
	Tenants     int     `json:"tenants"`
	Workers     int     `json:"workers"`
	Concurrency int     `json:"concurrency"`
	LatencyMS   float64 `json:"emulator_latency_ms"`
	SeedSeconds float64 `json:"seed_seconds"`

	Broadcast Scenario `json:"broadcast"`
	Alert     Scenario `json:"alert"`
	// AlertBeforeResume is how many of the alert's sends went out before
	// the broadcast resumed, and AlertTriedBeforeResume how many of its
	// devices had been tried (pushed to, whatever the answer) by then; the
	// rest are retries, which wait for their backoff. The broadcast resumed
	// with the first of its pushes that cannot have been taken from the
	// queue before the alert held it: the one after as many pushes as the
	// workers have sends in flight, counted from the alert's first push.
	AlertBeforeResume      int `json:"alert_sends_before_broadcast_resumed"`
	AlertTriedBeforeResume int `json:"alert_devices_tried_before_broadcast_resumed"`
	// Hold is how the alert's hold of the routine queues went, and how
	// evenly its sends flowed.
	Hold HoldFigures `json:"hold"`
	// Receipts are the alert's receipts, as its apps sent them (receipts.go).
	Receipts *Receipts `json:"receipts,omitempty"`

	// CPU is where the machine's CPU went during the broadcast.
	CPU *CPUShare `json:"cpu,omitempty"`

	PeakRSSMB          map[string]float64 `json:"peak_rss_mb"`
	RedisBytesPerTask  float64            `json:"redis_bytes_per_pending_task"`
	PeakPendingTasks   int                `json:"peak_pending_tasks"`
	PGRowsPerDelivery  float64            `json:"postgres_rows_written_per_delivery"`
	PGBytesPerDelivery float64            `json:"postgres_wal_bytes_per_delivery"`
	// PGHotShare is the share of the deliveries' updates that stayed on
	// their page (HOT): no new index entry, less WAL.
	PGHotShare float64 `json:"postgres_hot_update_share"`

	AsynqDrainPerSec float64 `json:"ceiling_asynq_noop_drain_per_sec"`
	// AsynqDrainCPUMicros is the CPU one no-op task took to dequeue and
	// complete (asynq's server and redis-server): the part of a push's CPU
	// no asynq-based sender can avoid.
	AsynqDrainCPUMicros float64 `json:"ceiling_asynq_noop_cpu_micros_per_task"`
	// AsynqManyDrainPerSec is the drain with drainServers servers sharing
	// the queue: what asynq itself can do on this machine.
	AsynqManyDrainPerSec float64 `json:"ceiling_asynq_noop_drain_many_servers_per_sec"`
	FCMPushPerSec        float64 `json:"ceiling_fcm_client_push_per_sec"`
	APNsPushPerSec       float64 `json:"ceiling_apns_client_push_per_sec"`
	// PipelinePerSec is the rate of an asynq sender that does nothing but
	// enqueue, dequeue, push through the same clients (2/3 FCM, 1/3 APNs)
	// and complete: the most a sender built of these parts, one task per
	// device, reaches on this machine. PipelineCPUMicros is its CPU per
	// push, emulator and Redis included.
	PipelinePerSec    float64 `json:"ceiling_asynq_and_clients_push_per_sec"`
	PipelineCPUMicros float64 `json:"ceiling_asynq_and_clients_cpu_micros_per_push"`
	// Ratios of crier's sustained send rate to the ceilings.
	RatioToAsynq     float64 `json:"ratio_to_asynq_drain"`
	RatioToAsynqMany float64 `json:"ratio_to_asynq_drain_many_servers"`
	RatioToFCM       float64 `json:"ratio_to_fcm_client"`
	RatioToAPNs      float64 `json:"ratio_to_apns_client"`
	RatioToPipeline  float64 `json:"ratio_to_asynq_and_clients"`

	Delivered bool `json:"every_device_delivered"`
}

// Scenario is one post's figures, measured from outside crier.
type Scenario struct {
	Audience          int     `json:"audience"`
	Sent              int     `json:"sent"`
	Final             int     `json:"final"` // deliveries with an outcome (sent, dead token, failed)
	SnapshotSeconds   float64 `json:"snapshot_seconds"`
	EnqueuePerSec     float64 `json:"enqueue_per_sec"`
	SustainedPerSec   float64 `json:"sustained_send_per_sec"`
	FirstSendSeconds  float64 `json:"time_to_first_send_seconds"`
	LastSendSeconds   float64 `json:"time_to_last_send_seconds"`
	P50LatencySeconds float64 `json:"p50_accepted_to_send_seconds"`
	P99LatencySeconds float64 `json:"p99_accepted_to_send_seconds"`
	// Duplicates are pushes to a device that already had the post.
	Duplicates          int `json:"duplicate_pushes"`
	acceptedAt          time.Time
	postID              int64
	firstSend, lastSend time.Time
}

// Run seeds, starts the emulator and crier, runs the scenarios and the
// ceilings, and returns the figures.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// The measuring instrument should take as little of the machine as it
	// can: the tally of a million pushes is a large heap, which the
	// default GC would mark again and again as the emulator allocates.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	work, err := os.MkdirTemp("", "crier-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	b := newRun(cfg)
	defer b.close()
	if err := b.setUp(ctx, work); err != nil {
		return nil, err
	}
	ten, err := b.seed(ctx)
	if err != nil {
		return nil, err
	}
	// Ceilings first, on the same Redis and emulator, with crier not running.
	if err := b.ceilings(ctx); err != nil {
		return nil, err
	}
	b.tally.reset()

	// crier: one api process and the worker processes.
	procs, err := startCrier(ctx, cfg, work, b.dbURL, b.rds.url(), b.secretKey)
	if err != nil {
		return nil, err
	}
	defer procs.stop()
	if err := b.playApps(ctx, procs.apiURL); err != nil {
		return nil, err
	}
	walStart, rowsStart, err := pgWritten(ctx, b.db)
	if err != nil {
		return nil, err
	}
	api := client{base: procs.apiURL, key: ten.muniKey}
	if err := b.follow(ctx, api, ten, procs); err != nil {
		return nil, err
	}
	if err := b.scenarioFigures(ctx, api); err != nil {
		return nil, err
	}
	if err := b.receiptFigures(ctx, api); err != nil {
		return nil, err
	}
	if err := b.writeFigures(ctx, walStart, rowsStart); err != nil {
		return nil, err
	}
	for name, pid := range procs.pids() {
		b.res.PeakRSSMB[name] = peakRSSMB(pid)
	}
	b.res.ratios()
	return b.res, nil
}

// run is a run under way: what it measures with (its own Redis and
// database, the emulator and the tally of its pushes) and what it has
// measured so far.
type run struct {
	cfg   Config
	res   *Result
	tally *tally
	rds   *benchRedis
	dbURL string
	db    *storage.DB
	// secretKey is the run's own master key, which seals the tenants'
	// credentials in its database and is given to the crier processes.
	secretKey string
	emu       *emulator.Emulator
	undo      []func() // what close undoes, in the order it was done
}

func newRun(cfg Config) *run {
	return &run{cfg: cfg, tally: newTally(), res: &Result{Devices: cfg.Devices, Tenants: cfg.Tenants, Workers: cfg.Workers,
		Concurrency: cfg.Concurrency, LatencyMS: float64(cfg.Latency) / float64(time.Millisecond), PeakRSSMB: map[string]float64{}}}
}

// setUp starts the run's Redis (in dir), database and emulator.
func (b *run) setUp(ctx context.Context, dir string) error {
	// A Redis of the run's own: its memory is the run's, and nothing else
	// is in it.
	rds, err := startRedis(ctx, dir)
	if err != nil {
		return err
	}
	b.rds = rds
	b.undo = append(b.undo, rds.stop)
	dbURL, dropDB, err := freshDatabase(ctx, b.cfg.AdminDatabaseURL, fmt.Sprintf("crier_bench_run_%d", os.Getpid()))
	if err != nil {
		return err
	}
	b.dbURL = dbURL
	b.undo = append(b.undo, dropDB)
	b.secretKey = secrets.NewKey()
	key, err := secrets.ParseKey(b.secretKey)
	if err != nil {
		return err
	}
	db, err := storage.Open(ctx, storage.Config{URL: dbURL, MaxConns: 8, Secrets: secrets.NewKeyring(key)})
	if err != nil {
		return err
	}
	b.db = db
	b.undo = append(b.undo, db.Close)
	if _, err := db.Migrate(ctx); err != nil {
		return err
	}

	// The emulator: records are streamed into a tally, not kept.
	emu, err := emulator.New(emulator.Config{Latency: b.cfg.Latency, MaxRecords: 1, OnRecord: b.tally.add, Logger: b.cfg.Logger})
	if err != nil {
		return err
	}
	if err := emu.Start(); err != nil {
		return err
	}
	b.emu = emu
	b.undo = append(b.undo, func() { emu.Close() }) //nolint:errcheck // stopping
	return nil
}

// close undoes what setUp did, last first.
func (b *run) close() {
	for i := len(b.undo) - 1; i >= 0; i-- {
		b.undo[i]()
	}
}

// seed makes the tenants, with their devices, and vacuums.
func (b *run) seed(ctx context.Context) (tenants, error) {
	fmt.Fprintf(b.cfg.Progress, "seeding %d devices over %d tenants...\n", b.cfg.Devices, b.cfg.Tenants)
	start := time.Now()
	ten, err := seedTenants(ctx, b.db, b.emu, b.cfg)
	if err != nil {
		return ten, fmt.Errorf("seed: %w", err)
	}
	b.res.SeedSeconds = time.Since(start).Seconds()
	// Vacuumed now, the fresh tables do not draw autovacuum into the
	// measurements below.
	if _, err := b.db.Pool.Exec(ctx, `VACUUM (ANALYZE)`); err != nil {
		return ten, fmt.Errorf("vacuum: %w", err)
	}
	return ten, nil
}

// ceilings measures what asynq, the provider clients and the two together
// do on this machine without crier, each on a flushed Redis.
func (b *run) ceilings(ctx context.Context) error {
	cfg, r, rds := b.cfg, b.res, b.rds
	fmt.Fprintf(cfg.Progress, "measuring the ceilings...\n")
	// The drain is measured twice and the faster kept: it varies by a
	// quarter from run to run, and a ceiling should not be low by chance.
	for range 2 {
		rate, cpu, err := asynqCeiling(ctx, rds.opt(), rds.cmd.Process.Pid, cfg.CeilingTasks, 1, cfg.Concurrency)
		if err != nil {
			return fmt.Errorf("asynq ceiling: %w", err)
		}
		if rate > r.AsynqDrainPerSec {
			r.AsynqDrainPerSec, r.AsynqDrainCPUMicros = rate, cpu
		}
		if err := rds.client.FlushAll(ctx).Err(); err != nil {
			return err
		}
	}
	// One server's dequeues are serial, so its drain is bound by the round
	// trip's latency and leaves the machine partly idle; several servers
	// drain as fast as the CPU allows.
	var err error
	if r.AsynqManyDrainPerSec, _, err = asynqCeiling(ctx, rds.opt(), rds.cmd.Process.Pid, cfg.CeilingTasks,
		drainServers, cfg.Workers*cfg.Concurrency); err != nil {
		return fmt.Errorf("asynq ceiling, %d servers: %w", drainServers, err)
	}
	if err := rds.client.FlushAll(ctx).Err(); err != nil {
		return err
	}
	// The clients push as many at a time as crier's workers have sends in
	// flight, so that the emulator's latency is not what limits them.
	inFlight := cfg.Workers * cfg.Concurrency
	cl, err := newClients(ctx, b.emu)
	if err != nil {
		return fmt.Errorf("ceiling clients: %w", err)
	}
	if r.FCMPushPerSec, r.APNsPushPerSec, err = clientCeilings(ctx, cl, cfg.CeilingTasks/2, inFlight); err != nil {
		return fmt.Errorf("client ceilings: %w", err)
	}
	if r.PipelinePerSec, r.PipelineCPUMicros, err = pipelineCeiling(ctx, rds.opt(), rds.cmd.Process.Pid, cl,
		cfg.CeilingTasks, pipelineServers, inFlight); err != nil {
		return fmt.Errorf("pipeline ceiling: %w", err)
	}
	return rds.client.FlushAll(ctx).Err()
}

// follow publishes the broadcast and, once it has a backlog to overtake,
// the alert, and follows both until they are done: their pushes, the CPU
// of the broadcast's middle, the Redis memory of the most pending tasks.
func (b *run) follow(ctx context.Context, api client, ten tenants, procs *crierProcs) error {
	cfg, r, tally := b.cfg, b.res, b.tally
	memBase, err := b.rds.usedMemory(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(cfg.Progress, "broadcast to %d devices...\n", ten.broadcast)
	if r.Broadcast, err = api.publish(ctx, map[string]any{"feed": "alle", "title": "Benchmark", "body": "Til alle innbyggere."}); err != nil {
		return err
	}
	tally.track(r.Broadcast.postID, "broadcast")

	insp := asynq.NewInspector(b.rds.opt())
	defer insp.Close()
	alertSent, profiled := false, false
	var hold <-chan HoldFigures
	// CPU time is read at the tenth and the ninetieth percent of the
	// broadcast's sends.
	cpuPIDs := procs.pids()
	cpuPIDs["redis-server"] = b.rds.cmd.Process.Pid
	var cpuFrom cpuSample
	var st postStatus
	tick := 0
	var peakPending int
	var peakBytes float64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		pending := queuePending(insp)
		if mem, err := b.rds.usedMemory(ctx); err == nil && pending > peakPending {
			peakPending, peakBytes = pending, float64(mem-memBase)
		}
		done := tally.count("broadcast")
		switch pushes := done + tally.count("alert"); {
		case cpuFrom.at.IsZero() && done >= ten.broadcast/10:
			cpuFrom = sampleCPU(cpuPIDs, pushes)
		case r.CPU == nil && !cpuFrom.at.IsZero() && done >= ten.broadcast*9/10:
			r.CPU = cpuShare(cpuFrom, sampleCPU(cpuPIDs, pushes))
		}
		// The post's status is asked for every 2 s, as a dashboard would, and
		// when the sends look finished.
		tick++
		if tick%8 == 0 || done+ten.broadcast/100 >= ten.broadcast {
			if st, err = api.status(ctx, r.Broadcast.postID); err != nil {
				return err
			}
		}
		progress(cfg.Progress, "broadcast", done, ten.broadcast, tally.count("alert"), ten.alert)
		if cfg.ProfileFile != "" && !profiled && done > ten.broadcast/20 {
			profiled = true
			startProfiles(ctx, cfg)
		}
		// The alert goes out once the broadcast has a backlog to overtake.
		if !alertSent && done > ten.broadcast/10 {
			started := make(chan struct{})
			hold = watchHold(ctx, b.rds.client, started)
			<-started
			if err := b.alert(ctx, api, ten, pending); err != nil {
				return err
			}
			alertSent = true
		}
		if st.State == "done" && alertSent && tick%4 == 0 {
			ast, err := api.status(ctx, r.Alert.postID)
			if err != nil {
				return err
			}
			if ast.State == "done" {
				break
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Fprintln(cfg.Progress)
	if hold != nil {
		select {
		case r.Hold = <-hold:
		case <-time.After(30 * time.Second):
		}
	}
	if peakPending > 0 {
		r.PeakPendingTasks, r.RedisBytesPerTask = peakPending, peakBytes/float64(peakPending)
	}
	return nil
}

// alert publishes the emergency post sent behind the broadcast.
func (b *run) alert(ctx context.Context, api client, ten tenants, pending int) error {
	fmt.Fprintf(b.cfg.Progress, "\nalert to %d devices behind %d pending sends...\n", ten.alert, pending)
	var err error
	if b.res.Alert, err = api.publish(ctx, map[string]any{"feed": "beredskap", "title": "Flom", "body": "Evakuer nå.",
		"class": "emergency", "tags": []string{AlertInterest}}); err != nil {
		return err
	}
	b.tally.track(b.res.Alert.postID, "alert")
	return nil
}

// startProfiles takes the CPU profiles of cfg.ProfileFile, in the
// background.
func startProfiles(ctx context.Context, cfg Config) {
	go func() {
		if err := profileSelf(cfg.ProfileFile + ".bench"); err != nil {
			cfg.Logger.Warn("profile", slog.Any("error", err))
		}
	}()
	go func() {
		if err := profile(ctx, cfg.ProfileFile); err != nil {
			cfg.Logger.Warn("profile", slog.Any("error", err))
		}
	}()
}

// scenarioFigures completes the scenarios from the posts' status and the
// tally, and counts how far the alert got before the broadcast resumed.
func (b *run) scenarioFigures(ctx context.Context, api client) error {
	r := b.res
	for _, sc := range []*Scenario{&r.Broadcast, &r.Alert} {
		st, err := api.status(ctx, sc.postID)
		if err != nil {
			return err
		}
		sc.fill(st, b.tally)
	}
	r.Delivered = r.Broadcast.Final == r.Broadcast.Audience && r.Alert.Final == r.Alert.Audience
	resumed := b.tally.nthAfter("broadcast", r.Alert.firstSend, b.cfg.Workers*b.cfg.Concurrency+1)
	r.AlertBeforeResume = b.tally.between("alert", r.Alert.firstSend.Add(-time.Nanosecond), resumed)
	r.AlertTriedBeforeResume = b.tally.triedBefore("alert", resumed)
	r.Hold.sendFigures(b.tally.times(r.Alert.postID), b.tally.times(r.Broadcast.postID), r.Alert.SustainedPerSec)
	return nil
}

// writeFigures reads what Postgres wrote per delivery since walStart and
// rowsStart (see pgWritten), and the share of HOT updates.
func (b *run) writeFigures(ctx context.Context, walStart, rowsStart int64) error {
	r := b.res
	// Postgres backends report their row counts at most once a second, and
	// idle ones within ten: the counts are read once every report is in.
	select {
	case <-time.After(11 * time.Second):
	case <-ctx.Done():
		return ctx.Err()
	}
	walEnd, rowsEnd, err := pgWritten(ctx, b.db)
	if err != nil {
		return err
	}
	if err := b.db.Pool.QueryRow(ctx, `SELECT coalesce(n_tup_hot_upd::float8 / nullif(n_tup_upd, 0), 0)
		FROM pg_stat_user_tables WHERE relname = 'deliveries'`).Scan(&r.PGHotShare); err != nil {
		return fmt.Errorf("hot updates: %w", err)
	}
	deliveries := float64(r.Broadcast.Audience + r.Alert.Audience)
	r.PGBytesPerDelivery = float64(walEnd-walStart) / deliveries
	r.PGRowsPerDelivery = float64(rowsEnd-rowsStart) / deliveries
	return nil
}

// ratios sets the ratios of the broadcast's sustained rate to the ceilings.
func (r *Result) ratios() {
	if r.Broadcast.SustainedPerSec > 0 {
		r.RatioToAsynq = r.Broadcast.SustainedPerSec / r.AsynqDrainPerSec
		r.RatioToAsynqMany = r.Broadcast.SustainedPerSec / r.AsynqManyDrainPerSec
		r.RatioToFCM = r.Broadcast.SustainedPerSec / r.FCMPushPerSec
		r.RatioToAPNs = r.Broadcast.SustainedPerSec / r.APNsPushPerSec
		r.RatioToPipeline = r.Broadcast.SustainedPerSec / r.PipelinePerSec
	}
}

// fill completes a scenario from the post's status and the tally.
func (sc *Scenario) fill(st postStatus, t *tally) {
	sc.Audience = st.Audience
	sc.Sent = st.Counts["sent"]
	sc.Final = st.Counts["sent"] + st.Counts["dead_token"] + st.Counts["failed"]
	if st.SnapshotAt != nil {
		sc.SnapshotSeconds = st.SnapshotAt.Sub(sc.acceptedAt).Seconds()
		if st.DispatchedAt != nil && st.DispatchedAt.After(*st.SnapshotAt) {
			sc.EnqueuePerSec = float64(st.Audience) / st.DispatchedAt.Sub(*st.SnapshotAt).Seconds()
		}
	}
	sc.Duplicates = t.duplicates(sc.postID)
	times := t.times(sc.postID)
	if len(times) == 0 {
		return
	}
	sc.firstSend, sc.lastSend = times[0], times[len(times)-1]
	sc.FirstSendSeconds = sc.firstSend.Sub(sc.acceptedAt).Seconds()
	sc.LastSendSeconds = sc.lastSend.Sub(sc.acceptedAt).Seconds()
	sc.P50LatencySeconds = times[len(times)/2].Sub(sc.acceptedAt).Seconds()
	sc.P99LatencySeconds = times[len(times)*99/100].Sub(sc.acceptedAt).Seconds()
	// Sustained: the middle 80 % of the sends, without ramp-up and tail.
	lo, hi := times[len(times)/10], times[len(times)*9/10]
	if d := hi.Sub(lo).Seconds(); d > 0 {
		sc.SustainedPerSec = float64(len(times)*8/10) / d
	}
}

// tally keeps, per post, the time of each accepted push and, per token,
// how many pushes were accepted and when it was first tried.
type tally struct {
	mu     sync.Mutex
	posts  map[int64]string
	sends  map[int64][]time.Time
	tokens map[int64]map[string]tokenStat
}

type tokenStat struct {
	accepted int
	tried    time.Time
}

func newTally() *tally {
	return &tally{posts: map[int64]string{}, sends: map[int64][]time.Time{}, tokens: map[int64]map[string]tokenStat{}}
}

func (t *tally) add(rec emulator.Record) {
	id, ok := postIDOf(rec.Body)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tokens[id] == nil {
		t.tokens[id] = map[string]tokenStat{}
	}
	st := t.tokens[id][rec.Token]
	if st.tried.IsZero() {
		st.tried = rec.Time
	}
	if rec.Accepted() {
		st.accepted++
		t.sends[id] = append(t.sends[id], rec.Time)
	}
	t.tokens[id][rec.Token] = st
}

// postIDOf finds the post id crier puts in every push's data
// ("post_id":"123", or "post_id":123).
func postIDOf(body string) (int64, bool) {
	const key = `"post_id":`
	i := strings.Index(body, key)
	if i < 0 {
		return 0, false
	}
	rest := strings.TrimLeft(body[i+len(key):], " \t\r\n\"")
	end := 0
	for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
		end++
	}
	id, err := strconv.ParseInt(rest[:end], 10, 64)
	return id, err == nil
}

// duplicates counts pushes of a post beyond the first to the same token.
func (t *tally) duplicates(id int64) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, st := range t.tokens[id] {
		n += max(0, st.accepted-1)
	}
	return n
}

func (t *tally) reset() {
	t.mu.Lock()
	t.sends, t.tokens = map[int64][]time.Time{}, map[int64]map[string]tokenStat{}
	t.mu.Unlock()
}

func (t *tally) track(id int64, name string) {
	t.mu.Lock()
	t.posts[id] = name
	t.mu.Unlock()
}

func (t *tally) idOf(name string) int64 {
	for id, n := range t.posts {
		if n == name {
			return id
		}
	}
	return -1
}

func (t *tally) count(name string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sends[t.idOf(name)])
}

func (t *tally) times(id int64) []time.Time {
	t.mu.Lock()
	out := slices.Clone(t.sends[id])
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

// nthAfter is the time of the named post's nth push after from (or the far
// future if there are fewer).
func (t *tally) nthAfter(name string, from time.Time, n int) time.Time {
	for _, at := range t.times(t.idOf(name)) {
		if at.After(from) {
			if n--; n == 0 {
				return at
			}
		}
	}
	return time.Now().Add(time.Hour)
}

// triedBefore counts the named post's devices first tried before a time.
func (t *tally) triedBefore(name string, before time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, st := range t.tokens[t.idOf(name)] {
		if st.tried.Before(before) {
			n++
		}
	}
	return n
}

func (t *tally) between(name string, from, to time.Time) int {
	n := 0
	for _, at := range t.times(t.idOf(name)) {
		if at.After(from) && at.Before(to) {
			n++
		}
	}
	return n
}

func progress(w io.Writer, name string, done, total, alertDone, alertTotal int) {
	const width = 40
	frac := float64(done) / float64(max(total, 1))
	bar := strings.Repeat("█", int(frac*width)) + strings.Repeat("░", width-int(frac*width))
	fmt.Fprintf(w, "\r%s %s %7d/%d  alert %d/%d   ", name, bar, done, total, alertDone, alertTotal)
}

// tenants is what the seed made.
type tenants struct {
	muniKey          string
	broadcast, alert int
}

// seedTenants makes cfg.Tenants tenants over the municipalities (cfg with
// its defaults), each with emulator credentials; the first holds 80 % of the devices, a mandatory
// feed "alle" and a feed "beredskap" for the alert, which reaches the
// devices with the alert interest.
func seedTenants(ctx context.Context, db *storage.DB, emu *emulator.Emulator, cfg Config) (tenants, error) {
	var out tenants
	var fc struct {
		Type     string            `json:"type"`
		Features []json.RawMessage `json:"features"`
	}
	if err := json.Unmarshal(cfg.Municipalities, &fc); err != nil {
		return out, fmt.Errorf("municipalities: %w", err)
	}
	for i := range cfg.Tenants {
		t, err := db.CreateTenant(ctx, fmt.Sprintf("bench-%d", i), fmt.Sprintf("Bench %d", i), "")
		if err != nil {
			return out, err
		}
		project := fmt.Sprintf("bench-%d", i)
		sa, err := emu.NewServiceAccount(project)
		if err != nil {
			return out, err
		}
		if err := db.SetFCM(ctx, t.ID, project, sa, emu.FCMEndpoint()); err != nil {
			return out, err
		}
		team, key, topic := fmt.Sprintf("TEAM%06d", i), fmt.Sprintf("KEY%07d", i), fmt.Sprintf("no.bench%d.app", i)
		p8, err := emu.NewAPNsKey(team, key, topic)
		if err != nil {
			return out, err
		}
		if err := db.SetAPNs(ctx, t.ID, storage.APNsSettings{KeyP8: p8, KeyID: key, TeamID: team, Topic: topic,
			Host: emu.APNsHost(), RootCA: emu.CACertPEM()}); err != nil {
			return out, err
		}
		// No rate limit gets in the way of measuring crier itself.
		for _, p := range []string{"fcm", "apns"} {
			if err := db.SetRateLimit(ctx, t.ID, p, 1_000_000); err != nil {
				return out, err
			}
		}
		pub, err := db.CreatePublisher(ctx, t.ID, "kommunen", "Kommunen", crier.RoleMunicipality)
		if err != nil {
			return out, err
		}
		catalogue := []storage.Interest{{Slug: AlertInterest}}
		for _, it := range Interests {
			catalogue = append(catalogue, storage.Interest{Slug: it})
		}
		if err := db.PutInterests(ctx, t.ID, catalogue); err != nil {
			return out, err
		}
		var feeds []int64
		for _, f := range []struct {
			slug      string
			mandatory bool
		}{{"alle", true}, {"beredskap", false}, {"nyheter", false}, {"kultur", false}, {"idrett", false}} {
			feed, err := db.CreateFeed(ctx, t.ID, pub.ID, f.slug, f.slug, f.mandatory)
			if err != nil {
				return out, err
			}
			if !f.mandatory && f.slug != "beredskap" {
				feeds = append(feeds, feed.ID)
			}
		}
		// Each tenant gets every cfg.Tenants-th municipality.
		var mine []json.RawMessage
		for j, f := range fc.Features {
			if j%cfg.Tenants == i {
				mine = append(mine, f)
			}
		}
		raw, _ := json.Marshal(map[string]any{"type": "FeatureCollection", "features": mine})
		if _, err := areas.Import(ctx, db, t.ID, raw, areas.Options{SlugProperty: "kommunenummer", NameProperty: "kommunenavn"}); err != nil {
			return out, err
		}
		n := cfg.tenantDevices(i)
		spec := SeedSpec{TenantID: t.ID, Devices: n, Feeds: feeds, Prefix: fmt.Sprintf("t%d-", i), Mixed: true}
		if i == 0 {
			spec.AlertEvery = max(1, n/cfg.AlertDevices)
			out.broadcast, out.alert = n, n/spec.AlertEvery
			k, err := db.NewAPIKey(ctx, t.ID, &pub.ID, "bench")
			if err != nil {
				return out, err
			}
			out.muniKey = k
		}
		if _, err := SeedDevices(ctx, db, spec); err != nil {
			return out, err
		}
	}
	return out, nil
}

// client talks to crier's API as a CMS would.
type client struct{ base, key string }

type postStatus struct {
	State        string         `json:"state"`
	Audience     int            `json:"audience"`
	Counts       map[string]int `json:"counts"`
	SnapshotAt   *time.Time     `json:"snapshot_at"`
	DispatchedAt *time.Time     `json:"dispatched_at"`
}

func (c client) do(ctx context.Context, method, path string, body, out any) error {
	return apiclient.Client{Base: c.base, Key: c.key}.Call(ctx, method, path, body, out)
}

func (c client) publish(ctx context.Context, post map[string]any) (Scenario, error) {
	var created struct{ ID int64 }
	at := time.Now()
	if err := c.do(ctx, "POST", "/v1/posts", post, &created); err != nil {
		return Scenario{}, err
	}
	return Scenario{acceptedAt: at, postID: created.ID}, nil
}

func (c client) status(ctx context.Context, id int64) (postStatus, error) {
	var st postStatus
	err := c.do(ctx, "GET", "/v1/posts/"+strconv.FormatInt(id, 10), nil, &st)
	return st, err
}

func queuePending(insp *asynq.Inspector) int {
	n := 0
	for _, q := range []string{"emergency", "dispatch", "official", "community"} {
		if info, err := insp.GetQueueInfo(q); err == nil {
			n += info.Pending + info.Scheduled + info.Retry
		}
	}
	return n
}

// pgWritten reads the server's WAL position and rows written so far.
func pgWritten(ctx context.Context, db *storage.DB) (wal, rows int64, err error) {
	err = db.Pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint,
		(SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = current_database())`).Scan(&wal, &rows)
	return wal, rows, err
}

// peakRSSMB is a process's peak resident set (VmHWM), in MB.
func peakRSSMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// crierProcs are the api and worker processes of a run.
type crierProcs struct {
	apiURL string
	cmds   map[string]*exec.Cmd
}

func (p *crierProcs) pids() map[string]int {
	out := map[string]int{}
	for name, c := range p.cmds {
		out[name] = c.Process.Pid
	}
	out["bench (emulator)"] = os.Getpid()
	return out
}

func (p *crierProcs) stop() {
	for _, c := range p.cmds {
		c.Process.Signal(syscall.SIGTERM) //nolint:errcheck // already gone is fine
	}
	for _, c := range p.cmds {
		c.Wait() //nolint:errcheck // stopping
	}
}

// startCrier starts `crier api` and cfg.Workers × `crier worker`, with the
// run's master key in place of any the environment holds.
func startCrier(ctx context.Context, cfg Config, dir, dbURL, redisURL, secretKey string) (*crierProcs, error) {
	p := &crierProcs{cmds: map[string]*exec.Cmd{}}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CRIER_SECRET_KEY") {
			env = append(env, kv)
		}
	}
	env = append(env, "CRIER_DATABASE_URL="+dbURL, "CRIER_REDIS_URL="+redisURL, "CRIER_LOG_LEVEL=warn", "CRIER_SECRET_KEY="+secretKey)
	start := func(name string, args ...string) (*exec.Cmd, *os.File, error) {
		logf, err := os.Create(filepath.Join(dir, name+".log"))
		if err != nil {
			return nil, nil, err
		}
		c := exec.CommandContext(ctx, cfg.Binary, args...)
		c.Env, c.Stdout, c.Stderr = env, logf, logf
		if err := c.Start(); err != nil {
			return nil, nil, fmt.Errorf("start %s: %w", name, err)
		}
		p.cmds[name] = c
		return c, logf, nil
	}
	_, apiLog, err := start("api", "api", "-addr", "127.0.0.1:0", "-log-level", "info")
	if err != nil {
		return nil, err
	}
	for i := range cfg.Workers {
		args := []string{"worker", "-concurrency", strconv.Itoa(cfg.Concurrency), "-migrate=false"}
		if i == 0 && cfg.ProfileFile != "" {
			args = append(args, "-metrics-addr", profileAddr, "-pprof")
		}
		if _, _, err := start(fmt.Sprintf("worker-%d", i+1), args...); err != nil {
			p.stop()
			return nil, err
		}
	}
	re := regexp.MustCompile(`msg="crier started".* addr=(\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for p.apiURL == "" {
		b, _ := os.ReadFile(apiLog.Name())
		if m := re.FindSubmatch(b); m != nil {
			p.apiURL = "http://" + string(m[1])
			break
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("crier api did not start: %s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p, nil
}

// profileAddr is where the first worker serves its profile when asked.
const profileAddr = "127.0.0.1:16061"

// profile saves a CPU profile of the first worker.
func profile(ctx context.Context, file string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+profileAddr+"/debug/pprof/profile?seconds=10", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, b, 0o644)
}

// profileSelf saves a 10 s CPU profile of this process.
func profileSelf(file string) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	time.Sleep(10 * time.Second)
	pprof.StopCPUProfile()
	return nil
}

// freshDatabase drops and creates a database on the server of adminURL.
func freshDatabase(ctx context.Context, adminURL, name string) (string, func(), error) {
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("connect to postgres: %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
		return "", nil, err
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		return "", nil, err
	}
	cfg, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return "", nil, err
	}
	u := fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
	drop := func() {
		c, err := pgx.Connect(context.Background(), adminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) //nolint:errcheck // best effort
	}
	return u, drop, nil
}

// benchRedis is the run's own redis-server on a unix socket.
type benchRedis struct {
	sock   string
	cmd    *exec.Cmd
	client *redis.Client
}

func startRedis(ctx context.Context, dir string) (*benchRedis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not installed (scripts/services.sh installs it)")
	}
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := &benchRedis{sock: sock, cmd: cmd, client: redis.NewClient(&redis.Options{Network: "unix", Addr: sock})}
	deadline := time.Now().Add(10 * time.Second)
	for r.client.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			r.stop()
			return nil, errors.New("redis-server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return r, nil
}

func (r *benchRedis) url() string { return "redis-socket://" + r.sock }
func (r *benchRedis) opt() asynq.RedisClientOpt {
	return asynq.RedisClientOpt{Network: "unix", Addr: r.sock}
}

func (r *benchRedis) usedMemory(ctx context.Context) (int64, error) {
	info, err := r.client.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no used_memory in INFO")
}

func (r *benchRedis) stop() {
	r.client.Close()
	r.cmd.Process.Kill() //nolint:errcheck
	r.cmd.Wait()         //nolint:errcheck
}
