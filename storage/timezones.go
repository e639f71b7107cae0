package storage

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// zones are the time zone names PostgreSQL knows (pg_timezone_names), read
// once per process: that view reads the whole tz database, 50 to 100 ms a
// time, too slow for every snapshot or registration.
type zones struct {
	mu    sync.Mutex
	names []string
	set   map[string]bool
}

// TimeZones lists the time zone names PostgreSQL knows.
func (db *DB) TimeZones(ctx context.Context) ([]string, error) {
	z := db.zones
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.set != nil {
		return z.names, nil
	}
	rows, err := db.pool.Query(ctx, `SELECT name FROM pg_timezone_names ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("time zones: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("time zones: %w", err)
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("time zones: %w", err)
	}
	z.set = make(map[string]bool, len(names))
	for _, n := range names {
		z.set[n] = true
	}
	z.names = names
	return names, nil
}

// KnownTimeZone reports whether every part of crier can use the zone: Go
// loads it (the worker and the API judge times in it) and PostgreSQL knows
// it by that name (the snapshot computes quiet hours in it). "Local" and
// abbreviations or POSIX rules that only one of them reads are refused.
func (db *DB) KnownTimeZone(ctx context.Context, name string) (bool, error) {
	if name == "" || name == "Local" {
		return false, nil
	}
	if _, err := time.LoadLocation(name); err != nil {
		return false, nil
	}
	if _, err := db.TimeZones(ctx); err != nil {
		return false, err
	}
	db.zones.mu.Lock()
	defer db.zones.mu.Unlock()
	return db.zones.set[name], nil
}
