// Package storage is crier's PostgreSQL/PostGIS layer: the embedded schema
// migrations and the named queries every other package uses. It turns
// pgx.ErrNoRows and constraint violations into the domain errors below at its
// boundary, so callers never see driver errors for expected outcomes.
package storage

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/crier-push/crier/internal/configcheck"
	"github.com/crier-push/crier/secrets"
)

var (
	// ErrNotFound: the row asked for does not exist (in this tenant).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique value is taken.
	ErrConflict = errors.New("already exists")
)

// DB is crier's database. It is safe for concurrent use.
type DB struct {
	// Pool is the connection pool itself, for tests and tools; storage's
	// own queries go through pool, which marks unreachability.
	Pool *pgxpool.Pool
	pool pool
	// zones are the time zones PostgreSQL knows, read once (timezones.go).
	zones *zones
	// secrets seal and open the tenants' provider credentials.
	secrets *secrets.Keyring
}

// Config says how to reach PostgreSQL.
type Config struct {
	// URL is a libpq connection URL or keyword/value string; empty means
	// libpq's environment (PGHOST and the rest).
	URL string
	// MaxConns caps the pool. Zero: the URL's pool_max_conns, but at least
	// DefaultMaxConns.
	MaxConns int32
	// StatementTimeout is PostgreSQL's statement_timeout on every
	// statement of the pool, rounded up to the millisecond: the server
	// itself ends a query that runs longer, even one whose caller has gone.
	// Zero: none (or the URL's statement_timeout).
	StatementTimeout time.Duration
	// Secrets are the master keys that seal the tenants' provider
	// credentials at rest (secrets.go). Nil: storing or reading a
	// credential fails with secrets.ErrNoKey.
	Secrets *secrets.Keyring
}

// DefaultMaxConns is the least pool a zero MaxConns gets, rather than
// pgxpool's own default of four (or the number of CPUs).
const DefaultMaxConns = 20

// validate refuses a config no pool can be made with, naming the field.
func (c Config) validate() error {
	return configcheck.First("storage config", configcheck.NotNegative("MaxConns", c.MaxConns),
		configcheck.NotNegative("StatementTimeout", c.StatementTimeout))
}

// Open connects to PostgreSQL and checks that it answers.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	// The default is applied here, not in a WithDefaults: it depends on
	// the URL's pool_max_conns.
	pc.MaxConns = cmp.Or(cfg.MaxConns, max(pc.MaxConns, DefaultMaxConns))
	if cfg.StatementTimeout > 0 {
		// Sent with the startup message: no round trip per connection.
		ms := (cfg.StatementTimeout + time.Millisecond - 1) / time.Millisecond
		pc.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(int64(ms), 10)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping postgres: %w", unavailable(err))
	}
	return &DB{Pool: pool, pool: poolOf(pool), zones: &zones{}, secrets: cfg.Secrets}, nil
}

// Close closes every connection.
func (db *DB) Close() { db.Pool.Close() }

// Ping checks that PostgreSQL answers; used by readiness checks.
func (db *DB) Ping(ctx context.Context) error { return unavailable(db.Pool.Ping(ctx)) }

func poolOf(p *pgxpool.Pool) pool { return pool{marked: marked{q: p}, p: p} }

// notFound maps pgx.ErrNoRows to ErrNotFound, wrapping what was looked for.
func notFound(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isUniqueViolation reports whether err is a unique-constraint violation.
func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
