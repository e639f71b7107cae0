// Package testenv gives tests real, isolated services: a fresh PostgreSQL
// database cloned from a migrated template, a private redis-server on a
// unix socket, and the emulator of Google and Apple. Where a service is
// missing a local run skips loudly; under CI=true it fails. It also holds
// what the packages' tests share on top of them: the master key that
// seals credentials, tenants, publishers and feeds made or the test
// failed, a call of the API, and the wait for asynchronous work.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/crier-push/crier/storage"
)

// unavailable fails the test under CI and skips it, loudly, elsewhere.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("required service missing (CI=true): %s", msg)
	}
	t.Skipf("SKIPPING: required service missing: %s (run scripts/services.sh)", msg)
}

// AdminURL is the PostgreSQL server tests create their databases on:
// CRIER_TEST_DATABASE_URL, else CRIER_DATABASE_URL, else the local default.
func AdminURL() string {
	for _, k := range []string{"CRIER_TEST_DATABASE_URL", "CRIER_DATABASE_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return "postgres://postgres@127.0.0.1:5432/crier?sslmode=disable"
}

func withDatabase(raw, name string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("parse %q: %w", raw, err)
	}
	u.Path = "/" + name
	return u.String(), nil
}

const templateLock = 7_235_002

// ensureTemplate creates and migrates the template database once per set of
// migrations, across every test process, under an advisory lock.
func ensureTemplate(ctx context.Context, admin *pgx.Conn) (string, error) {
	fp, err := storage.MigrationsFingerprint()
	if err != nil {
		return "", err
	}
	name := "crier_tmpl_" + fp
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock($1)`, templateLock); err != nil {
		return "", fmt.Errorf("lock template: %w", err)
	}
	defer admin.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, templateLock) //nolint:errcheck
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("find template: %w", err)
	}
	if exists {
		return name, nil
	}
	building := name + "_building"
	if _, err := admin.Exec(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`); err != nil {
		return "", fmt.Errorf("drop half-built template: %w", err)
	}
	if _, err := admin.Exec(ctx, `CREATE DATABASE `+building); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	u, err := withDatabase(AdminURL(), building)
	if err != nil {
		return "", err
	}
	db, err := storage.Open(ctx, storage.Config{URL: u, MaxConns: 2})
	if err != nil {
		return "", err
	}
	_, err = db.Migrate(ctx)
	db.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, `ALTER DATABASE `+building+` RENAME TO `+name); err != nil {
		return "", fmt.Errorf("publish template: %w", err)
	}
	return name, nil
}

// connectAdmin connects to the PostgreSQL server tests create their
// databases on and makes sure the migrated template is there; it returns
// the connection, for the caller to close, and the template's name.
func connectAdmin(ctx context.Context, t testing.TB) (*pgx.Conn, string) {
	t.Helper()
	admin, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		unavailable(t, "PostgreSQL at %s: %v", redactURL(AdminURL()), err)
	}
	tmpl, err := ensureTemplate(ctx, admin)
	if err != nil {
		admin.Close(context.Background())
		t.Fatalf("test database template: %v", err)
	}
	return admin, tmpl
}

// DB returns a fresh, migrated database of its own for the test, dropped
// when the test ends; it seals credentials under SecretKey.
func DB(t testing.TB) *storage.DB {
	t.Helper()
	url, _ := DBURL(t)
	db, err := storage.Open(context.Background(), storage.Config{URL: url, Secrets: Secrets()})
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

// DBURL creates a fresh migrated database for the test and returns its URL
// and name; it is dropped when the test ends.
func DBURL(t testing.TB) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, tmpl := connectAdmin(ctx, t)
	defer admin.Close(context.Background())
	var b [6]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand never fails on Linux
	name := "crier_test_" + hex.EncodeToString(b[:])
	// Clones of one template contend for it; retry while another clone
	// holds it.
	var err error
	for attempt := 0; ; attempt++ {
		_, err = admin.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+tmpl)
		if err == nil || !strings.Contains(err.Error(), "being accessed by other users") || attempt > 50 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, AdminURL())
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := withDatabase(AdminURL(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u, name
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable url)"
	}
	return u.Redacted()
}

// Redis is a private redis-server for one test.
type Redis struct {
	Socket string
}

// AsynqOpt is how asynq reaches this Redis.
func (r Redis) AsynqOpt() asynq.RedisClientOpt {
	return asynq.RedisClientOpt{Network: "unix", Addr: r.Socket}
}

// Client is a go-redis client of this Redis, closed with the test.
func (r Redis) Client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: r.Socket})
	t.Cleanup(func() { c.Close() })
	return c
}

// URL is this Redis as a CRIER_REDIS_URL (asynq's URI form).
func (r Redis) URL() string { return "redis-socket://" + r.Socket }

// StartRedis starts a private redis-server on a unix socket for the test and
// stops it when the test ends.
func StartRedis(t testing.TB) Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "redis-server is not installed")
	}
	// Unix socket paths are limited to about 100 bytes: t.TempDir is too long.
	dir, err := os.MkdirTemp("", "crier-redis-")
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "redis.sock")
	cmd := exec.Command(bin, "--port", "0", "--unixsocket", sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }() //nolint:errcheck // killed on cleanup
	t.Cleanup(func() {
		cmd.Process.Kill() //nolint:errcheck
		<-done
		os.RemoveAll(dir)
	})
	c := redis.NewClient(&redis.Options{Network: "unix", Addr: sock})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return Redis{Socket: sock}
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			t.Fatalf("redis-server exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server did not answer on %s: %v", sock, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// PersistentDB returns a migrated database named name (suffixed with the
// migrations' fingerprint) that outlives the test: for benchmarks whose
// seed data takes long to make. It is created from the template if missing.
func PersistentDB(t testing.TB, name string) *storage.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, tmpl := connectAdmin(ctx, t)
	defer admin.Close(context.Background())
	fp, _ := storage.MigrationsFingerprint()
	name = name + "_" + fp
	var exists bool
	if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if !exists {
		if _, err := admin.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE `+tmpl); err != nil {
			t.Fatalf("create %s: %v", name, err)
		}
	}
	u, err := withDatabase(AdminURL(), name)
	if err != nil {
		t.Fatal(err)
	}
	db, err := storage.Open(context.Background(), storage.Config{URL: u, Secrets: Secrets()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}
