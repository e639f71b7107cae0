package storage_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/crier-push/crier/internal/testenv"
	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/secrets"
	"github.com/crier-push/crier/storage"
)

// keyring makes a keyring of new random keys, the first current.
func keyring(t *testing.T, keys ...secrets.Key) *secrets.Keyring {
	t.Helper()
	return secrets.NewKeyring(keys[0], keys[1:]...)
}

func newKey(t *testing.T) secrets.Key {
	t.Helper()
	k, err := secrets.ParseKey(secrets.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// openWith opens the test database at url with a keyring (nil: none).
func openWith(t *testing.T, url string, ring *secrets.Keyring) *storage.DB {
	t.Helper()
	db, err := storage.Open(context.Background(), storage.Config{URL: url, MaxConns: 2, Secrets: ring})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	return db
}

// creds are the secrets of one tenant, as an operator gives them.
type creds struct{ ServiceAccount, KeyP8, RootCA string }

// newCreds makes real credentials: a service account and a .p8 key of the
// emulator (each with its private key in PEM), and its CA.
func newCreds(t *testing.T, emu *emulator.Emulator, i int) creds {
	t.Helper()
	sa, err := emu.NewServiceAccount(fmt.Sprintf("project-%d", i))
	if err != nil {
		t.Fatal(err)
	}
	p8, err := emu.NewAPNsKey("TEAM123456", fmt.Sprintf("KEY%07d", i), "no.example.app")
	if err != nil {
		t.Fatal(err)
	}
	return creds{string(sa), string(p8), string(emu.CACertPEM())}
}

// set stores c as tenant's credentials through db.
func set(t *testing.T, db *storage.DB, tenantID int64, c creds) {
	t.Helper()
	ctx := context.Background()
	if err := db.SetFCM(ctx, tenantID, "project", []byte(c.ServiceAccount), ""); err != nil {
		t.Fatal(err)
	}
	if err := db.SetAPNs(ctx, tenantID, storage.APNsSettings{KeyP8: []byte(c.KeyP8), KeyID: "KEY", TeamID: "TEAM",
		Topic: "no.example.app", RootCA: []byte(c.RootCA)}); err != nil {
		t.Fatal(err)
	}
}

// setLegacy stores c in the clear, as crier did before migration 0008, past
// the triggers that now refuse that.
func setLegacy(t *testing.T, db *storage.DB, tenantID int64, c creds) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE tenants SET fcm_project_id = 'project', fcm_service_account = $2,
			apns_key_p8 = $3, apns_key_id = 'KEY', apns_team_id = 'TEAM', apns_topic = 'no.example.app' WHERE id = $1`,
			tenantID, []byte(c.ServiceAccount), []byte(c.KeyP8))
		return err
	})
	if err != nil {
		t.Fatalf("store legacy credentials: %v", err)
	}
}

// read reads tenant's secrets through db.
func read(t *testing.T, db *storage.DB, tenantID int64) creds {
	t.Helper()
	c, err := db.TenantCredentials(context.Background(), tenantID)
	if err != nil {
		t.Fatal(err)
	}
	return creds{string(c.FCMServiceAccount), string(c.APNsKeyP8), string(c.APNsRootCA)}
}

// stored is what the database holds in tenants' secret columns.
func stored(t *testing.T, db *storage.DB) map[string][]byte {
	t.Helper()
	rows, err := db.Pool.Query(context.Background(), `SELECT id, fcm_service_account, apns_key_p8, apns_root_ca FROM tenants`)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for rows.Next() {
		var id int64
		var v [3][]byte
		if err := rows.Scan(&id, &v[0], &v[1], &v[2]); err != nil {
			t.Fatal(err)
		}
		for i, col := range []string{"fcm_service_account", "apns_key_p8", "apns_root_ca"} {
			if v[i] != nil {
				out[fmt.Sprintf("%d.%s", id, col)] = v[i]
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// dump is the whole test database as text: pg_dump's if it is installed,
// else every text, JSON and bytea column of every table.
func dump(t *testing.T, db *storage.DB) string {
	t.Helper()
	ctx := context.Background()
	if bin, err := exec.LookPath("pg_dump"); err == nil {
		out, err := exec.CommandContext(ctx, bin, "--dbname="+db.Pool.Config().ConnString()).Output()
		if err == nil {
			return string(out)
		}
		t.Logf("pg_dump failed (%v); reading the tables instead", err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT table_schema, table_name, column_name FROM information_schema.columns
		WHERE table_schema NOT IN ('pg_catalog', 'information_schema')
		AND data_type IN ('text', 'bytea', 'json', 'jsonb', 'character varying', 'ARRAY')`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowToStructByPos[struct{ Schema, Table, Column string }])
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range cols {
		q := fmt.Sprintf(`SELECT %s::text FROM %s`, pgx.Identifier{c.Column}.Sanitize(), pgx.Identifier{c.Schema, c.Table}.Sanitize())
		rows, err := db.Pool.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		vs, err := pgx.CollectRows(rows, pgx.RowTo[*string])
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for _, v := range vs {
			if v != nil {
				b.WriteString(*v + "\n")
			}
		}
	}
	return b.String()
}

// privateParts are what must never be found in the database: every line
// of the private keys' base64, as text and as the hex that bytea dumps as.
func privateParts(t *testing.T, c creds) []string {
	t.Helper()
	var sa struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal([]byte(c.ServiceAccount), &sa); err != nil || !strings.Contains(sa.PrivateKey, "-----BEGIN") {
		t.Fatalf("service account without a PEM private key: %v", err)
	}
	var parts []string
	for _, pem := range []string{sa.PrivateKey, c.KeyP8} {
		for _, line := range strings.Split(pem, "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				parts = append(parts, line)
			}
		}
	}
	return withHex(parts...)
}

func withHex(parts ...string) []string {
	for _, p := range parts[:len(parts):len(parts)] {
		parts = append(parts, hex.EncodeToString([]byte(p)))
	}
	return parts
}

// found lists the parts found in the dump.
func found(dump string, parts []string) []string {
	var out []string
	lower := strings.ToLower(dump)
	for _, p := range parts {
		if strings.Contains(dump, p) || strings.Contains(lower, p) {
			out = append(out, p)
		}
	}
	return out
}

// TestSecretsSealedAtRest: once FCM and APNs credentials are set, a dump of
// the database holds no PEM and no part of a private key. The check finds
// them when they are there: a tenant stored in the clear, as before
// migration 0008, shows in the dump until its credentials are first read,
// which seals them.
func TestSecretsSealedAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, _ := testenv.DBURL(t)
	db := openWith(t, url, testenv.Secrets())
	emu := testenv.StartEmulator(t, emulator.Config{})
	tn := testenv.Tenant(t, db, "sealed", "Sealed", "")
	legacy := testenv.Tenant(t, db, "legacy", "Legacy", "")
	sealedCreds, legacyCreds := newCreds(t, emu, 1), newCreds(t, emu, 2)
	set(t, db, tn.ID, sealedCreds)
	setLegacy(t, db, legacy.ID, legacyCreds)

	d := dump(t, db)
	if got := found(d, privateParts(t, sealedCreds)); len(got) > 0 {
		t.Errorf("the dump holds the sealed tenant's private keys: %q", got)
	}
	if got := found(d, privateParts(t, legacyCreds)); len(got) == 0 {
		t.Fatalf("the dump does not show the credentials stored in the clear: the check finds nothing")
	}
	if diff := cmp.Diff(sealedCreds, read(t, db, tn.ID)); diff != "" {
		t.Errorf("credentials read back (-want +got):\n%s", diff)
	}

	// The first read seals the legacy values, and reads them the same.
	want := creds{legacyCreds.ServiceAccount, legacyCreds.KeyP8, ""}
	for range 2 {
		if diff := cmp.Diff(want, read(t, db, legacy.ID)); diff != "" {
			t.Errorf("legacy credentials read (-want +got):\n%s", diff)
		}
	}
	for col, v := range stored(t, db) {
		if !secrets.IsSealed(v) {
			t.Errorf("%s is not sealed after a read", col)
		}
	}
	d = dump(t, db)
	for _, c := range []creds{sealedCreds, legacyCreds} {
		if got := found(d, privateParts(t, c)); len(got) > 0 {
			t.Errorf("the dump holds private keys: %q", got)
		}
	}
	if got := found(d, withHex("-----BEGIN")); len(got) > 0 {
		t.Errorf("the dump holds a PEM block: %q", got)
	}
	// Sealing a legacy value does not make workers rebuild their clients.
	if c, err := db.TenantCredentials(ctx, legacy.ID); err != nil || c.Version != 1 {
		t.Errorf("credentials version %d, %v after the legacy values were sealed; want 1", c.Version, err)
	}
}

// TestRotateSecrets: rotation seals every stored secret under the new key,
// the legacy ones too, and the old key is not needed to read them after;
// it is idempotent, and all or nothing.
func TestRotateSecrets(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, _ := testenv.DBURL(t)
	a, b, c := newKey(t), newKey(t), newKey(t)
	dbA := openWith(t, url, keyring(t, a))
	emu := testenv.StartEmulator(t, emulator.Config{})
	want := map[int64]creds{}
	for i, slug := range []string{"one", "two", "legacy"} {
		tn := testenv.Tenant(t, dbA, slug, slug, "")
		cr := newCreds(t, emu, i)
		if slug == "legacy" {
			setLegacy(t, dbA, tn.ID, cr)
			cr.RootCA = ""
		} else {
			set(t, dbA, tn.ID, cr)
		}
		want[tn.ID] = cr
	}

	dbBA := openWith(t, url, keyring(t, b, a))
	r, err := dbBA.RotateSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(storage.Rotation{Key: b.ID(), Resealed: map[secrets.ID]int{a.ID(): 6}, Sealed: 2}, r); diff != "" {
		t.Errorf("rotation (-want +got):\n%s", diff)
	}
	dbB := openWith(t, url, keyring(t, b))
	for id, cr := range want {
		if diff := cmp.Diff(cr, read(t, dbB, id)); diff != "" {
			t.Errorf("tenant %d read with the new key alone (-want +got):\n%s", id, diff)
		}
		if _, err := dbA.TenantCredentials(ctx, id); !errors.Is(err, secrets.ErrUnknownKey) {
			t.Errorf("tenant %d read with the old key alone: %v, want ErrUnknownKey", id, err)
		}
	}

	before := stored(t, dbB)
	r, err = dbBA.RotateSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(storage.Rotation{Key: b.ID(), Resealed: map[secrets.ID]int{}, Unchanged: 8}, r); diff != "" {
		t.Errorf("second rotation (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(before, stored(t, dbB)); diff != "" {
		t.Errorf("a second rotation changed what is stored (-before +after):\n%s", diff)
	}

	// A tenant under a key the keyring lacks fails the rotation, which
	// changes nothing, not even the rows before it.
	first := testenv.Tenant(t, dbA, "under-a", "Under A", "")
	set(t, dbA, first.ID, newCreds(t, emu, 10))
	lost := testenv.Tenant(t, dbA, "under-c", "Under C", "")
	set(t, openWith(t, url, keyring(t, c)), lost.ID, newCreds(t, emu, 11))
	before = stored(t, dbB)
	_, err = dbBA.RotateSecrets(ctx)
	if !errors.Is(err, secrets.ErrUnknownKey) || !strings.Contains(err.Error(), fmt.Sprintf("tenant %d", lost.ID)) ||
		!strings.Contains(err.Error(), c.ID().String()) {
		t.Errorf("rotation past a value under an unknown key: %v; want ErrUnknownKey naming tenant %d and key %s", err, lost.ID, c.ID())
	}
	if diff := cmp.Diff(before, stored(t, dbB)); diff != "" {
		t.Errorf("a failed rotation changed what is stored (-before +after):\n%s", diff)
	}
	if _, err := openWith(t, url, nil).RotateSecrets(ctx); !errors.Is(err, secrets.ErrNoKey) {
		t.Errorf("rotation without a key: %v, want ErrNoKey", err)
	}
}

// TestSecretsRefused: a wrong key, a value moved to another tenant or
// column, a truncated one, or none at all fail with an error that says
// which; and the database refuses to store a credential in the clear.
func TestSecretsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, _ := testenv.DBURL(t)
	a := newKey(t)
	db := openWith(t, url, keyring(t, a))
	emu := testenv.StartEmulator(t, emulator.Config{})
	one := testenv.Tenant(t, db, "one", "One", "")
	two := testenv.Tenant(t, db, "two", "Two", "")
	set(t, db, one.ID, newCreds(t, emu, 1))
	set(t, db, two.ID, newCreds(t, emu, 2))
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	other := openWith(t, url, keyring(t, newKey(t)))
	_, err := other.TenantCredentials(ctx, one.ID)
	if !errors.Is(err, secrets.ErrUnknownKey) || !strings.Contains(err.Error(), a.ID().String()) ||
		!strings.Contains(err.Error(), fmt.Sprintf("credentials of tenant %d", one.ID)) {
		t.Errorf("read with a wrong key: %v; want ErrUnknownKey naming the tenant and key %s", err, a.ID())
	}
	none := openWith(t, url, nil)
	if _, err := none.TenantCredentials(ctx, one.ID); !errors.Is(err, secrets.ErrNoKey) {
		t.Errorf("read without a key: %v, want ErrNoKey", err)
	}
	err = none.SetFCM(ctx, one.ID, "project", []byte(`{"private_key": "-----BEGIN PRIVATE KEY-----"}`), "")
	if !errors.Is(err, secrets.ErrNoKey) || !strings.Contains(err.Error(), "CRIER_SECRET_KEY") {
		t.Errorf("set without a key: %v; want ErrNoKey saying what to set", err)
	}
	if err := none.SetAPNs(ctx, one.ID, storage.APNsSettings{KeyP8: []byte("-----BEGIN PRIVATE KEY-----")}); !errors.Is(err, secrets.ErrNoKey) {
		t.Errorf("set apns without a key: %v, want ErrNoKey", err)
	}

	// One's service account moved into two's row, and two's .p8 key into
	// its CA column.
	exec(`UPDATE tenants SET fcm_service_account = (SELECT fcm_service_account FROM tenants WHERE id = $1) WHERE id = $2`, one.ID, two.ID)
	_, err = db.TenantCredentials(ctx, two.ID)
	if !errors.Is(err, secrets.ErrNotAuthentic) || !strings.Contains(err.Error(), "fcm_service_account") || !strings.Contains(err.Error(), "moved") {
		t.Errorf("read of a value moved from another tenant: %v; want ErrNotAuthentic naming the column", err)
	}
	set(t, db, two.ID, newCreds(t, emu, 3))
	exec(`UPDATE tenants SET apns_root_ca = apns_key_p8 WHERE id = $1`, two.ID)
	if _, err := db.TenantCredentials(ctx, two.ID); !errors.Is(err, secrets.ErrNotAuthentic) || !strings.Contains(err.Error(), "apns_root_ca") {
		t.Errorf("read of a value moved from another column: %v; want ErrNotAuthentic naming apns_root_ca", err)
	}
	exec(`UPDATE tenants SET fcm_service_account = substring(fcm_service_account FROM 1 FOR 20) WHERE id = $1`, one.ID)
	if _, err := db.TenantCredentials(ctx, one.ID); !errors.Is(err, secrets.ErrMalformed) {
		t.Errorf("read of a truncated value: %v, want ErrMalformed", err)
	}

	for _, col := range []string{"fcm_service_account", "apns_key_p8", "apns_root_ca"} {
		_, err := db.Pool.Exec(ctx, `UPDATE tenants SET `+col+` = $2 WHERE id = $1`, one.ID, []byte("-----BEGIN PRIVATE KEY-----"))
		if err == nil || !strings.Contains(err.Error(), col+" must be sealed") {
			t.Errorf("%s written in the clear: %v; want the database to refuse it", col, err)
		}
	}
	legacy := testenv.Tenant(t, db, "legacy", "Legacy", "")
	legacyCreds := newCreds(t, emu, 4)
	setLegacy(t, db, legacy.ID, legacyCreds)
	if _, err := none.TenantCredentials(ctx, legacy.ID); !errors.Is(err, secrets.ErrNoKey) || !strings.Contains(err.Error(), "unencrypted") {
		t.Errorf("read of a legacy value without a key: %v; want ErrNoKey saying it is unencrypted", err)
	}
	if v := stored(t, db)[fmt.Sprintf("%d.apns_key_p8", legacy.ID)]; !bytes.Equal(v, []byte(legacyCreds.KeyP8)) {
		t.Errorf("a failed read changed the legacy value")
	}
}
