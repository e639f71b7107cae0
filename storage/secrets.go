package storage

import (
	"context"
	"fmt"

	"github.com/crier-push/crier/internal/derrors"
	"github.com/crier-push/crier/secrets"
)

// secretColumns are the columns of tenants that hold sealed values: the
// private keys, and the CA the APNs client trusts, which is not secret but
// is sealed so that whoever can write the database cannot swap it unseen.
// Nothing else reaches the SQL text of the queries below. Migration 0008
// refuses a write of anything unsealed into them.
var secretColumns = [...]string{"fcm_service_account", "apns_key_p8", "apns_root_ca"}

// secretAD binds a sealed value to its tenant and column: moved anywhere
// else, it does not open.
func secretAD(tenantID int64, column string) []byte {
	return fmt.Appendf(nil, "tenants.%s:%d", column, tenantID)
}

// seal seals a tenant's secret for its column; an empty one is stored as
// NULL, with nothing to seal.
func (db *DB) seal(tenantID int64, column string, plain []byte) ([]byte, error) {
	if len(plain) == 0 {
		return nil, nil
	}
	b, err := db.secrets.Seal(plain, secretAD(tenantID, column))
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", column, err)
	}
	return b, nil
}

// openSecret opens a tenant's stored secret. A value stored in the clear
// before secrets were sealed (crier before migration 0008) is sealed now,
// on this first read, and written back if the row still holds it.
func (db *DB) openSecret(ctx context.Context, tenantID int64, column string, stored []byte) ([]byte, error) {
	if stored == nil {
		return nil, nil
	}
	if !secrets.IsSealed(stored) {
		sealed, err := db.seal(tenantID, column, stored)
		if err != nil {
			return nil, fmt.Errorf("%s is stored unencrypted: %w", column, err)
		}
		if _, err := db.pool.Exec(ctx, resealSQL(column), tenantID, stored, sealed); err != nil {
			return nil, fmt.Errorf("seal unencrypted %s: %w", column, err)
		}
		return stored, nil
	}
	plain, err := db.secrets.Open(stored, secretAD(tenantID, column))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", column, err)
	}
	return plain, nil
}

// resealSQL replaces a column's value if the row still holds the one read;
// it does not change credentials_version: what the value says is the same.
func resealSQL(column string) string {
	return `UPDATE tenants SET ` + column + ` = $3 WHERE id = $1 AND ` + column + ` = $2`
}

// Rotation is what RotateSecrets did.
type Rotation struct {
	// Key is the master key every stored secret is sealed under now.
	Key secrets.ID
	// Resealed counts the values that were under an older key, by key.
	Resealed map[secrets.ID]int
	// Sealed counts the values that were stored in the clear.
	Sealed int
	// Unchanged counts the values already under Key (each opened, to be
	// sure it does).
	Unchanged int
}

// RotateSecrets seals every stored secret under the current master key, in
// one transaction: a value under an older key of the keyring is opened and
// sealed again, a value stored in the clear is sealed, and a value already
// under the current key is only checked. If any value does not open
// (its key is not in the keyring, or it was altered), nothing changes.
// Once it returns, the older keys are no longer needed; running it again
// changes nothing.
func (db *DB) RotateSecrets(ctx context.Context) (r Rotation, err error) {
	defer derrors.Wrap(&err, "rotate secrets")
	if db.secrets == nil {
		return Rotation{}, secrets.ErrNoKey
	}
	r = Rotation{Key: db.secrets.Current(), Resealed: map[secrets.ID]int{}}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return Rotation{}, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after Commit
	type row struct {
		id     int64
		values [len(secretColumns)][]byte
	}
	var all []row
	rows, err := tx.Query(ctx, `SELECT id, fcm_service_account, apns_key_p8, apns_root_ca FROM tenants ORDER BY id FOR UPDATE`)
	if err != nil {
		return Rotation{}, err
	}
	for rows.Next() {
		var t row
		if err := rows.Scan(&t.id, &t.values[0], &t.values[1], &t.values[2]); err != nil {
			rows.Close()
			return Rotation{}, err
		}
		all = append(all, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return Rotation{}, err
	}
	for _, t := range all {
		for i, column := range secretColumns {
			stored := t.values[i]
			if stored == nil {
				continue
			}
			plain := stored
			if secrets.IsSealed(stored) {
				id, err := secrets.KeyOf(stored)
				if err == nil {
					plain, err = db.secrets.Open(stored, secretAD(t.id, column))
				}
				if err != nil {
					return Rotation{}, fmt.Errorf("tenant %d: %s: %w", t.id, column, err)
				}
				if id == r.Key {
					r.Unchanged++
					continue
				}
				r.Resealed[id]++
			} else {
				r.Sealed++
			}
			sealed, err := db.seal(t.id, column, plain)
			if err != nil {
				return Rotation{}, fmt.Errorf("tenant %d: %w", t.id, err)
			}
			if _, err := tx.Exec(ctx, resealSQL(column), t.id, stored, sealed); err != nil {
				return Rotation{}, fmt.Errorf("tenant %d: write %s: %w", t.id, column, err)
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return Rotation{}, err
	}
	return r, nil
}
