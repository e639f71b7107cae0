package storage

import (
	"context"
	"fmt"
)

// LockRedisRecovery is the advisory lock the process that queues every
// open post again after Redis lost its data holds, so that only one does
// (dispatcher.Reconciler). The other keys: migrations 7_235_001
// (migrate.go), the tests' template 7_235_002 (internal/testenv).
const LockRedisRecovery int64 = 7_235_003

// WithTryLock runs fn while holding the session advisory lock key, on a
// connection of its own, if no other session holds it; it reports whether
// fn ran. The lock goes with the connection, so a process that dies holding
// it frees it.
func (db *DB) WithTryLock(ctx context.Context, key int64, fn func(context.Context) error) (ran bool, err error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("lock %d: acquire: %w", key, err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&locked); err != nil {
		return false, fmt.Errorf("lock %d: %w", key, unavailable(err))
	}
	if !locked {
		return false, nil
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key); uerr != nil {
			// The lock would stay with the pooled connection: drop it.
			conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck // closing frees the lock either way
		}
	}()
	return true, fn(ctx)
}
