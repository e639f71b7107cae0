// Package storage is crier's PostgreSQL/PostGIS layer: the embedded schema
// migrations and the named queries every other package uses. It turns
// pgx.ErrNoRows and constraint violations into the domain errors below at its
// boundary, so callers never see driver errors for expected outcomes.
package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
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
}

// Config says how to reach PostgreSQL.
type Config struct {
	URL      string
	MaxConns int32 // default 20
}

// Open connects to PostgreSQL and checks that it answers.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if cfg.MaxConns > 0 {
		pc.MaxConns = cfg.MaxConns
	} else if pc.MaxConns < 20 {
		pc.MaxConns = 20
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ping postgres: %w", unavailable(err))
	}
	return &DB{Pool: pool, pool: poolOf(pool)}, nil
}

// Close closes every connection.
func (db *DB) Close() { db.Pool.Close() }

// Ping checks that PostgreSQL answers; used by readiness checks.
func (db *DB) Ping(ctx context.Context) error { return unavailable(db.Pool.Ping(ctx)) }

func poolOf(p *pgxpool.Pool) pool { return pool{p: p} }

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
