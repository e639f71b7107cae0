package storage

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrUnavailable: PostgreSQL cannot be reached now (refused, timed out,
// the connection lost, a statement over its timeout, no connection slot
// left); the caller should come back later.
var ErrUnavailable = errors.New("database temporarily unavailable")

// unavailable marks the failures of reaching PostgreSQL as ErrUnavailable,
// once, here: callers never inspect driver errors.
func unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	var pe *pgconn.PgError
	switch {
	case errors.As(err, &ce) || pgconn.Timeout(err) || errors.As(err, &ne):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errors.As(err, &pe) && (pe.Code == "57014" || pe.Code == "53300"):
		// A statement_timeout (query_canceled) or too_many_connections:
		// the database is too busy now, not the request wrong.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// querier is what pgx's pool and transactions share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// marked runs queries on q, marking every error that says PostgreSQL is
// out of reach as ErrUnavailable, the rows' and the row's too.
type marked struct{ q querier }

func (m marked) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	t, err := m.q.Exec(ctx, sql, args...)
	return t, unavailable(err)
}

func (m marked) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r, err := m.q.Query(ctx, sql, args...)
	if err != nil {
		return nil, unavailable(err)
	}
	return rows{r}, nil
}

func (m marked) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return row{m.q.QueryRow(ctx, sql, args...)}
}

// pool is the connection pool as storage's queries use it.
type pool struct {
	marked
	p *pgxpool.Pool
}

func (p pool) Begin(ctx context.Context) (pgx.Tx, error) {
	t, err := p.p.Begin(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	return tx{t}, nil
}

func (p pool) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	c, err := p.p.Acquire(ctx)
	return c, unavailable(err)
}

type row struct{ pgx.Row }

func (r row) Scan(dest ...any) error { return unavailable(r.Row.Scan(dest...)) }

type rows struct{ pgx.Rows }

func (r rows) Err() error { return unavailable(r.Rows.Err()) }

// tx is a transaction whose queries are marked like the pool's.
type tx struct{ pgx.Tx }

func (t tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return marked{t.Tx}.Exec(ctx, sql, args...)
}

func (t tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return marked{t.Tx}.Query(ctx, sql, args...)
}

func (t tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return marked{t.Tx}.QueryRow(ctx, sql, args...)
}

func (t tx) Commit(ctx context.Context) error { return unavailable(t.Tx.Commit(ctx)) }
