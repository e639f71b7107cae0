// Package server runs crier's roles in one process: the HTTP API, and the
// asynq server that runs the dispatcher and the send workers. `crier serve`
// runs both; `crier api` and `crier worker` one each. Tests start it on
// port 0 with real Postgres and Redis.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/crier-push/crier/api"
	"github.com/crier-push/crier/dispatcher"
	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/metrics"
	"github.com/crier-push/crier/publish"
	"github.com/crier-push/crier/receipts"
	"github.com/crier-push/crier/secrets"
	"github.com/crier-push/crier/storage"
	"github.com/crier-push/crier/tasks"
	"github.com/crier-push/crier/worker"
)

// Config says what to run and where.
type Config struct {
	DatabaseURL string
	// Secrets are the master keys that seal the tenants' provider
	// credentials (storage.Config); the workers cannot send without them.
	Secrets *secrets.Keyring
	// RedisURL in asynq's URI form: redis://host:port/db, rediss://...,
	// redis-socket:///path/to/sock.
	RedisURL string
	// HTTPAddr is where the API listens, ":8080" by default; "127.0.0.1:0"
	// in tests.
	HTTPAddr string
	// API and Worker choose the roles; both when neither is set.
	API, Worker bool
	// Concurrency is how many sends one worker process runs at once.
	// Default 200: sends wait on the network, not on the CPU. The routine
	// and the urgent queue groups have this many each; they take turns
	// while an alert is sent (see tasks.Groups).
	Concurrency int
	// QueueServers is how many asynq servers share a group's sends: one
	// server dequeues serially, a Redis round trip per task, and that, not
	// the CPU, caps its rate. Default 8.
	QueueServers int
	// Dispatches is how many posts one worker process dispatches at once.
	// Default 4.
	Dispatches int
	// Groups are the queue groups (tasks.Groups) a worker process serves;
	// all by default. A process may, for one, only dispatch.
	Groups []string
	// ShutdownTimeout bounds how long in-flight sends may finish. Default 10s.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	// Now is the clock that judges quiet hours and expiry; default
	// time.Now. Tests move it.
	Now func() time.Time
	// MetricsAddr, when set, serves /metrics on its own listener and the
	// API's does not; unset, an API process serves it on HTTPAddr.
	MetricsAddr string
	// PProf serves Go's profiles (/debug/pprof/) on MetricsAddr, which it
	// needs: never on the API's listener. Off by default.
	PProf bool
	// The API listener's limits, which close slow and idle connections
	// and refuse huge headers, so that a flood of them cannot hold its
	// sockets: ReadHeaderTimeout for a request's header, ReadTimeout for
	// all of it, WriteTimeout from the end of the header to the end of the
	// answer (more than RequestTimeout, so a request that ran out of time
	// is still told so), IdleTimeout between the requests of a kept-alive
	// connection, MaxHeaderBytes. Defaults Default<Field>.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	// RequestTimeout is the deadline of every API request (api.Config).
	// StatementTimeout is PostgreSQL's statement_timeout on the API's
	// queries; the API has a pool of its own, so the dispatcher and the
	// workers beside it have none (a snapshot of a million devices may
	// take longer) and previews cannot take their connections. Defaults
	// api.DefaultRequestTimeout and DefaultStatementTimeout.
	RequestTimeout, StatementTimeout time.Duration
	// Previews is how many audience previews the API runs at once
	// (api.Config); at most half the least pool (storage.DefaultMaxConns),
	// so alerts and posts always find a connection. Default
	// api.DefaultPreviews.
	Previews int
	// AuthPause is how long a tenant's provider rests after refusing its
	// credentials (worker.Config); CredentialsCheck how often workers
	// re-read a tenant's credentials (default 10s).
	AuthPause, CredentialsCheck time.Duration
	// ReconcileInterval is how often a worker process queues the posts
	// stored while Redis was away and checks that Redis kept its data
	// (dispatcher.Reconciler); default dispatcher.DefaultReconcileInterval.
	ReconcileInterval time.Duration
	// Receipts tunes the API's writer of the apps' receipts
	// (receipts.Config), which writes on the API's pool.
	Receipts receipts.Config
}

// Defaults of the Config.
const (
	DefaultHTTPAddr = ":8080"
	// DefaultConcurrency: sends wait on the network, not on the CPU.
	DefaultConcurrency     = 200
	DefaultQueueServers    = 8
	DefaultDispatches      = 4
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultReadHeaderTimeout: a header is a few hundred bytes, sent at
	// once by any real client.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultReadTimeout: past the request deadline, so a body that
	// arrives in time is never cut.
	DefaultReadTimeout = 15 * time.Second
	// DefaultWriteTimeout: past the request deadline, so its 503 is sent.
	DefaultWriteTimeout = 20 * time.Second
	DefaultIdleTimeout  = time.Minute
	// DefaultMaxHeaderBytes: an API key and a proxy's forwarding headers
	// fit many times over; Go's own default is a megabyte.
	DefaultMaxHeaderBytes = 32 << 10
	// DefaultStatementTimeout is the request deadline: the request is
	// answered (503) when its context ends, and PostgreSQL ends what it
	// was still running soon after.
	DefaultStatementTimeout = api.DefaultRequestTimeout
)

// maxPreviews is the most Previews may be: half the least pool an API gets,
// as each preview holds one connection.
const maxPreviews = storage.DefaultMaxConns / 2

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	c.HTTPAddr = cmp.Or(c.HTTPAddr, DefaultHTTPAddr)
	if !c.API && !c.Worker {
		c.API, c.Worker = true, true
	}
	c.Concurrency = cmp.Or(c.Concurrency, DefaultConcurrency)
	if c.QueueServers == 0 {
		c.QueueServers = DefaultQueueServers
	}
	if c.Concurrency > 0 {
		c.QueueServers = min(c.QueueServers, c.Concurrency)
	}
	c.Dispatches = cmp.Or(c.Dispatches, DefaultDispatches)
	if len(c.Groups) == 0 {
		for _, g := range tasks.Groups() {
			c.Groups = append(c.Groups, g.Name)
		}
	}
	c.ShutdownTimeout = cmp.Or(c.ShutdownTimeout, DefaultShutdownTimeout)
	c.ReadHeaderTimeout = cmp.Or(c.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	c.ReadTimeout = cmp.Or(c.ReadTimeout, DefaultReadTimeout)
	c.WriteTimeout = cmp.Or(c.WriteTimeout, DefaultWriteTimeout)
	c.IdleTimeout = cmp.Or(c.IdleTimeout, DefaultIdleTimeout)
	c.MaxHeaderBytes = cmp.Or(c.MaxHeaderBytes, DefaultMaxHeaderBytes)
	c.RequestTimeout = cmp.Or(c.RequestTimeout, api.DefaultRequestTimeout)
	c.StatementTimeout = cmp.Or(c.StatementTimeout, DefaultStatementTimeout)
	c.Previews = cmp.Or(c.Previews, api.DefaultPreviews)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate refuses a config that cannot run, naming the field.
func (c Config) validate() error {
	if err := configcheck.First("server config",
		configcheck.Required("DatabaseURL", c.DatabaseURL),
		configcheck.Required("RedisURL", c.RedisURL),
		configcheck.AtLeast("Concurrency", c.Concurrency, 1),
		configcheck.AtLeast("QueueServers", c.QueueServers, 1),
		configcheck.AtLeast("Dispatches", c.Dispatches, 1),
		configcheck.NotNegative("ShutdownTimeout", c.ShutdownTimeout),
		configcheck.NotNegative("AuthPause", c.AuthPause),
		configcheck.NotNegative("CredentialsCheck", c.CredentialsCheck),
		configcheck.NotNegative("ReadHeaderTimeout", c.ReadHeaderTimeout),
		configcheck.NotNegative("ReadTimeout", c.ReadTimeout),
		configcheck.NotNegative("IdleTimeout", c.IdleTimeout),
		configcheck.NotNegative("MaxHeaderBytes", c.MaxHeaderBytes),
		configcheck.NotNegative("RequestTimeout", c.RequestTimeout),
		configcheck.NotNegative("StatementTimeout", c.StatementTimeout),
		configcheck.If(c.WriteTimeout <= c.RequestTimeout,
			"WriteTimeout %v: must exceed RequestTimeout %v, or a request out of time is never answered", c.WriteTimeout, c.RequestTimeout),
		configcheck.AtLeast("Previews", c.Previews, 1),
		configcheck.If(c.Previews > maxPreviews,
			"Previews %d: must be at most %d, half the API's least pool", c.Previews, maxPreviews),
		configcheck.If(c.PProf && c.MetricsAddr == "", "PProf needs MetricsAddr: profiles are never served on the API's listener"),
		configcheck.NotNegative("ReconcileInterval", c.ReconcileInterval),
	); err != nil {
		return err
	}
	for _, name := range c.Groups {
		if !slices.ContainsFunc(tasks.Groups(), func(g tasks.Group) bool { return g.Name == name }) {
			return fmt.Errorf("server config: Groups: queue group %q: want urgent, dispatch or routine", name)
		}
	}
	return nil
}

// Server is a running crier process.
type Server struct {
	cfg    Config
	db     *storage.DB
	rdb    redis.UniversalClient // for readiness checks
	client *asynq.Client
	ln     net.Listener
	http   *http.Server
	asynq  []*asynq.Server
	rec    *worker.Recorder
	tasks  *asynq.ServeMux // the handlers of the asynq servers
	holder *tasks.Holder
	recon  *dispatcher.Reconciler
	met    *metrics.Metrics
	insp   *asynq.Inspector
	mln    net.Listener
	mhttp  *http.Server

	// rescuer takes back the emergency tasks of a dead worker process.
	rescuer *tasks.Rescuer
	// apiDB is the API's pool: db in a process without workers, its own
	// beside them (StatementTimeout).
	apiDB *storage.DB
	// receipts writes the apps' receipts in batches (API role).
	receipts *receipts.Writer
}

// New connects to Postgres and Redis and prepares the roles; Run starts them.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	ropt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	rc, ok := ropt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		return nil, errors.New("redis url: unsupported client")
	}
	if err := rc.Ping(ctx).Err(); err != nil {
		rc.Close()
		return nil, fmt.Errorf("ping redis: %w", err)
	}
	// The first pool is the workers', or the API's in a process without
	// them; only the API's has a statement timeout.
	var timeout time.Duration
	if !cfg.Worker {
		timeout = cfg.StatementTimeout
	}
	db, err := storage.Open(ctx, cfg.storage(timeout))
	if err != nil {
		rc.Close()
		return nil, err
	}
	s := &Server{cfg: cfg, db: db, apiDB: db, rdb: rc, client: asynq.NewClient(ropt), insp: asynq.NewInspector(ropt)}
	queues := make([]string, 0, len(tasks.Queues()))
	for q := range tasks.Queues() {
		queues = append(queues, q)
	}
	s.met = metrics.New(s.insp, queues, cfg.Logger)
	if cfg.MetricsAddr != "" {
		if s.mln, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			s.Close()
			return nil, fmt.Errorf("listen on %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", s.met.Handler())
		s.mhttp = cfg.httpServer(mux)
		if cfg.PProf {
			// Profiles, for finding where a worker's time goes (crier
			// bench -profile); only on this listener, which is not the
			// API's. A CPU profile is written for as long as it is asked.
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			s.mhttp.WriteTimeout = 0
		}
	}
	if cfg.API {
		s.ln, err = net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
		}
		if cfg.Worker {
			if s.apiDB, err = storage.Open(ctx, cfg.storage(cfg.StatementTimeout)); err != nil {
				s.Close()
				return nil, err
			}
		}
		db := s.apiDB
		pub, err := publish.New(db, s.client, publish.Config{Logger: cfg.Logger})
		if err != nil {
			s.Close()
			return nil, err
		}
		rcfg := cfg.Receipts
		rcfg.Logger = cmp.Or(rcfg.Logger, cfg.Logger)
		if s.receipts, err = receipts.New(db, rcfg); err != nil {
			s.Close()
			return nil, err
		}
		handler, err := api.New(db, pub, api.Config{Logger: cfg.Logger,
			Ready:          map[string]api.Pinger{"postgres": db, "redis": redisPinger{rc}},
			RequestTimeout: cfg.RequestTimeout, Previews: cfg.Previews, Receipts: s.receipts})
		if err != nil {
			s.Close()
			return nil, err
		}
		mux := http.NewServeMux()
		if cfg.MetricsAddr == "" {
			mux.Handle("GET /metrics", s.met.Handler())
		}
		mux.Handle("/", handler)
		s.http = cfg.httpServer(mux)
	}
	if cfg.Worker {
		if err := s.buildWorker(ropt); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// buildWorker prepares the worker role: the recorder, the emergency hold,
// the dispatch and send handlers, and the asynq servers of each queue
// group.
func (s *Server) buildWorker(ropt asynq.RedisConnOpt) error {
	cfg, db := s.cfg, s.db
	rec, err := worker.NewRecorder(db, worker.RecorderConfig{Logger: cfg.Logger})
	if err != nil {
		return err
	}
	s.rec = rec
	s.holder = tasks.NewHolder(s.insp, s.rdb, cfg.Logger)
	if s.rescuer, err = tasks.NewRescuer(s.rdb, tasks.RescuerConfig{Logger: cfg.Logger}); err != nil {
		return err
	}
	s.tasks = asynq.NewServeMux()
	marker := tasks.NewMarker(s.rdb)
	disp, err := dispatcher.New(db, s.client, dispatcher.Config{Logger: cfg.Logger, Now: cfg.Now,
		Observer: s.met, Holder: s.holder, Generations: marker})
	if err != nil {
		return err
	}
	s.recon, err = dispatcher.NewReconciler(disp, marker, dispatcher.ReconcilerConfig{Interval: cfg.ReconcileInterval,
		Logger: cfg.Logger})
	if err != nil {
		return err
	}
	s.tasks.Handle(tasks.TypeDispatch, disp)
	send, err := worker.New(db, worker.NewTenantSenders(db, cfg.CredentialsCheck), worker.NewLimiter(s.rdb), s.rec,
		worker.Config{Logger: cfg.Logger, Now: cfg.Now, AuthPause: cfg.AuthPause, Observer: s.met})
	if err != nil {
		return err
	}
	s.tasks.Handle(tasks.TypeSend, send)
	for _, g := range tasks.Groups() {
		if !slices.Contains(cfg.Groups, g.Name) {
			continue
		}
		servers, concurrency := cfg.QueueServers, cfg.Concurrency
		if g.Name == "dispatch" {
			servers, concurrency = 1, cfg.Dispatches
		}
		for i := range servers {
			per := concurrency / servers
			if i < concurrency%servers {
				per++
			}
			s.asynq = append(s.asynq, asynq.NewServer(ropt, asynq.Config{
				Concurrency:    per,
				Queues:         g.Queues,
				StrictPriority: true,
				RetryDelayFunc: worker.RetryDelay,
				IsFailure:      worker.IsFailure,
				// An idle server looks for new tasks this often: an
				// alert arriving at a quiet moment must not wait a
				// second.
				TaskCheckInterval:        50 * time.Millisecond,
				DelayedTaskCheckInterval: time.Second,
				ShutdownTimeout:          cfg.ShutdownTimeout,
				Logger:                   tasks.Logger{L: cfg.Logger},
				LogLevel:                 asynq.WarnLevel,
				ErrorHandler:             dispatchErrors(cfg.Logger),
			}))
		}
	}
	return nil
}

// Addr is where the API listens.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// DB is the server's database.
func (s *Server) DB() *storage.DB { return s.db }

// Run serves until ctx ends, then shuts down gracefully: the API stops taking
// requests and in-flight sends finish and are recorded.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	recCtx, stopRec := context.WithCancel(context.WithoutCancel(ctx))
	if s.rec != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.rec.Run(recCtx) }()
		wg.Add(1)
		go func() { defer wg.Done(); s.holder.Watch(recCtx, 5*time.Second) }()
		wg.Add(1)
		go func() { defer wg.Done(); s.rescuer.Run(recCtx) }()
		// Redis is made to hold what Postgres says is open before this
		// process takes its first task; then the reconciler keeps it so.
		if err := s.recon.Reconcile(ctx); err != nil {
			s.cfg.Logger.Warn("reconcile posts with redis at start", slog.Any("error", err))
		}
		wg.Add(1)
		go func() { defer wg.Done(); s.recon.Run(recCtx) }()
		for i, srv := range s.asynq {
			if err := srv.Start(s.tasks); err != nil {
				for _, started := range s.asynq[:i] {
					started.Shutdown()
				}
				stopRec()
				wg.Wait()
				return fmt.Errorf("start worker: %w", err)
			}
		}
	}
	// The receipt writer outlives the API's listener, so that what the
	// last requests handed it is written.
	receiptsCtx, stopReceipts := context.WithCancel(context.WithoutCancel(ctx))
	receiptsDone := make(chan struct{})
	go func() {
		defer close(receiptsDone)
		if s.receipts != nil {
			s.receipts.Run(receiptsCtx)
		}
	}()
	if s.http != nil {
		go func() {
			if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve api: %w", err)
			}
		}()
		s.cfg.Logger.Info("api listening", slog.String("addr", s.Addr()))
	}
	if s.mhttp != nil {
		go func() {
			if err := s.mhttp.Serve(s.mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve metrics: %w", err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, h := range []*http.Server{s.http, s.mhttp} {
		if h != nil {
			sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
			if serr := h.Shutdown(sctx); serr != nil {
				err = errors.Join(err, fmt.Errorf("shut down http: %w", serr))
			}
			cancel()
		}
	}
	stopReceipts()
	<-receiptsDone
	// Shutdown waits for in-flight sends, which wait for their records.
	var stopping sync.WaitGroup
	for _, srv := range s.asynq {
		stopping.Go(srv.Shutdown)
	}
	stopping.Wait()
	stopRec()
	wg.Wait()
	return err
}

// Close releases connections. Call after Run returns.
func (s *Server) Close() error {
	err := errors.Join(s.client.Close(), s.insp.Close(), s.rdb.Close())
	s.db.Close()
	if s.apiDB != nil && s.apiDB != s.db {
		s.apiDB.Close()
	}
	if err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// storage is the config of a pool, with a statement timeout or none.
func (c Config) storage(statementTimeout time.Duration) storage.Config {
	return storage.Config{URL: c.DatabaseURL, Secrets: c.Secrets, StatementTimeout: statementTimeout}
}

// httpServer serves h with the listener limits.
func (c Config) httpServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout,
		WriteTimeout: c.WriteTimeout, IdleTimeout: c.IdleTimeout, MaxHeaderBytes: c.MaxHeaderBytes}
}

type redisPinger struct{ c redis.UniversalClient }

func (p redisPinger) Ping(ctx context.Context) error { return p.c.Ping(ctx).Err() }

// dispatchErrors logs a failed dispatch: asynq retries it without a word,
// and a post that cannot be snapshotted would otherwise stay accepted with
// nothing in the log. A send's failures are its delivery's (last_error)
// and counted in the metrics; they are not logged one by one.
func dispatchErrors(log *slog.Logger) asynq.ErrorHandler {
	return asynq.ErrorHandlerFunc(func(ctx context.Context, t *asynq.Task, err error) {
		if t.Type() != tasks.TypeDispatch {
			return
		}
		retried, _ := asynq.GetRetryCount(ctx)
		log.Error("dispatch failed", slog.String("payload", string(t.Payload())), slog.Int("retried", retried), slog.Any("error", err))
	})
}
