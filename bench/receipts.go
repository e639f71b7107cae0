package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crier-push/crier/providers/emulator"
	"github.com/crier-push/crier/secrets"
	"github.com/crier-push/crier/storage"
)

// Receipts are the alert's receipts: the emulator plays the apps of the
// alert's devices, each posting its receipt to crier as its push is
// answered, every phone at once, as after a real alert.
type Receipts struct {
	// Posted were taken by crier (202); Refused were answered 429 or 503
	// after every retry; Failed otherwise; Retried counts the retries.
	Posted  int `json:"posted"`
	Refused int `json:"refused"`
	Failed  int `json:"failed"`
	Retried int `json:"retried"`
	// PerSec is the rate crier took them, first to last.
	PerSec float64 `json:"posted_per_sec"`
	// Received and Displayed are the alert's reach as crier shows it;
	// the latencies are from its acceptance to each device's receipt.
	Received  int     `json:"received"`
	Displayed int     `json:"displayed"`
	FirstMS   float64 `json:"latency_first_ms"`
	MedianMS  float64 `json:"latency_median_ms"`
	P95MS     float64 `json:"latency_p95_ms"`
	// AfterLastSendSeconds is how long after the alert's last push crier
	// took its last receipt.
	AfterLastSendSeconds float64 `json:"last_receipt_after_last_send_seconds"`
}

// benchTenant and benchPrefix are the first tenant, which the alert
// reaches, and the start of its installation ids (seedTenants).
const (
	benchTenant = "bench-0"
	benchPrefix = "t0-"
)

// appSecret is the device secret a seeded installation's app holds: a
// hash of the run's key and the installation id, so the emulator can tell
// it from the token alone, as no map of a million secrets is needed.
func appSecret(runKey, installation string) string {
	sum := sha256.Sum256([]byte(runKey + installation))
	return "crier_dev_bench_" + hex.EncodeToString(sum[:16])
}

// seedSecrets gives the tenant's alert devices (the others never send a
// receipt) the secrets appSecret says, in one statement.
func seedSecrets(ctx context.Context, db *storage.DB, tenantID int64, runKey string) error {
	if _, err := db.Pool.Exec(ctx, `UPDATE devices
		SET secret_hash = sha256(convert_to('crier_dev_bench_' ||
			left(encode(sha256(convert_to($2 || installation_id, 'UTF8')), 'hex'), 32), 'UTF8'))
		WHERE tenant_id = $1 AND $3 = ANY(interests)`, tenantID, runKey, AlertInterest); err != nil {
		return fmt.Errorf("receipts: device secrets: %w", err)
	}
	return nil
}

// playApps gives the alert's devices their device secrets and makes the
// emulator post their apps' receipts for the alert (and for no other post)
// to crier at apiURL. Call it before the alert goes out.
func (b *run) playApps(ctx context.Context, apiURL string) error {
	var tenantID int64
	if err := b.db.Pool.QueryRow(ctx, `SELECT id FROM tenants WHERE slug = $1`, benchTenant).Scan(&tenantID); err != nil {
		return fmt.Errorf("receipts: find tenant: %w", err)
	}
	appKey, err := b.db.NewAPIKey(ctx, tenantID, nil, "bench app")
	if err != nil {
		return fmt.Errorf("receipts: app key: %w", err)
	}
	runKey := secrets.NewKey()
	if err := seedSecrets(ctx, b.db, tenantID, runKey); err != nil {
		return err
	}
	var alerts sync.Map // post id → whether it is the alert
	isAlert := func(post int64) bool {
		if v, ok := alerts.Load(post); ok {
			return v.(bool)
		}
		b.tally.mu.Lock()
		name, known := b.tally.posts[post]
		b.tally.mu.Unlock()
		if known {
			alerts.Store(post, name == "alert")
		}
		return name == "alert"
	}
	return b.emu.PostReceipts(emulator.ReceiptsConfig{URL: apiURL, Displayed: true,
		// As many as crier serves at once (api.DefaultReceiptRequests):
		// more would only be told to come back.
		Concurrency: 4, Queue: 2 * b.cfg.AlertDevices,
		Device: func(provider, token string, post int64) (emulator.ReceiptDevice, bool) {
			if !isAlert(post) {
				return emulator.ReceiptDevice{}, false
			}
			inst, ok := seededInstallation(provider, token)
			return emulator.ReceiptDevice{AppKey: appKey, InstallationID: inst, Secret: appSecret(runKey, inst)}, ok
		}})
}

// seededInstallation is the installation of the first tenant a seeded
// token belongs to (SeedDevices): FCM tokens end in the installation id,
// APNs tokens in the device's number in hex.
func seededInstallation(provider, token string) (string, bool) {
	if provider == "apns" {
		if len(token) != 64 {
			return "", false
		}
		n, err := strconv.ParseUint(strings.TrimLeft(token[14:], "0"), 16, 64)
		return benchPrefix + strconv.FormatUint(n, 10), err == nil
	}
	rest, ok := strings.CutPrefix(token, "emu-")
	if !ok {
		return "", false
	}
	_, inst, ok := strings.Cut(rest, "-")
	return inst, ok && strings.HasPrefix(inst, benchPrefix)
}

// receiptFigures waits (up to a minute) until every receipt the apps
// queued has its answer and crier shows them all in the alert's reach,
// then fills r.Receipts.
func (b *run) receiptFigures(ctx context.Context, api client) error {
	id := b.res.Alert.postID
	var reach struct {
		Reach struct {
			Received  int `json:"received"`
			Displayed int `json:"displayed"`
			LatencyMS *struct {
				First, Median, P95 float64
			} `json:"latency_ms"`
		} `json:"reach"`
	}
	deadline := time.Now().Add(time.Minute)
	var st emulator.ReceiptStats
	for {
		st = b.emu.ReceiptStats()
		if err := api.do(ctx, "GET", "/v1/posts/"+strconv.FormatInt(id, 10), nil, &reach); err != nil {
			return fmt.Errorf("receipts: read the alert's reach: %w", err)
		}
		if st.Done() && reach.Reach.Received >= int(st.Accepted) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	rc := &Receipts{Posted: int(st.Accepted), Refused: int(st.Refused), Failed: int(st.Failed), Retried: int(st.Retried),
		PerSec: st.PerSecond(), Received: reach.Reach.Received, Displayed: reach.Reach.Displayed}
	if l := reach.Reach.LatencyMS; l != nil {
		rc.FirstMS, rc.MedianMS, rc.P95MS = l.First, l.Median, l.P95
	}
	if !b.res.Alert.lastSend.IsZero() && !st.LastAccepted.IsZero() {
		rc.AfterLastSendSeconds = st.LastAccepted.Sub(b.res.Alert.lastSend).Seconds()
	}
	b.res.Receipts = rc
	return nil
}
