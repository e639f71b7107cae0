package worker

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/providers/apns"
	"github.com/crier-push/crier/providers/fcm"
	"github.com/crier-push/crier/storage"
)

// TenantSender is a tenant's client of one provider and what limits it.
type TenantSender struct {
	Sender
	Scope     Scope
	PerSecond int
	// AuthError: the provider refused these credentials last time (as
	// recorded in the tenant).
	AuthError bool
}

// TenantSenders builds one long-lived provider client per tenant and
// provider from the tenant's stored credentials, and rebuilds it when the
// credentials change. The credentials are read at most once per checkEvery.
type TenantSenders struct {
	db         *storage.DB
	checkEvery time.Duration

	mu      sync.Mutex
	clients map[senderKey]*tenantClient
}

type senderKey struct {
	tenantID int64
	provider string
}

type tenantClient struct {
	mu      sync.Mutex
	checked time.Time
	ts      TenantSender
}

// DefaultCredentialsCheck is how often a tenant's credentials are read
// again when NewTenantSenders is given zero: a change is used within it.
const DefaultCredentialsCheck = 10 * time.Second

// NewTenantSenders makes a TenantSenders. checkEvery defaults to
// DefaultCredentialsCheck.
func NewTenantSenders(db *storage.DB, checkEvery time.Duration) *TenantSenders {
	checkEvery = cmp.Or(checkEvery, DefaultCredentialsCheck)
	return &TenantSenders{db: db, checkEvery: checkEvery, clients: map[senderKey]*tenantClient{}}
}

// Sender returns the tenant's client of a provider, with its limits.
func (ts *TenantSenders) Sender(ctx context.Context, tenantID int64, provider string) (TenantSender, error) {
	k := senderKey{tenantID, provider}
	ts.mu.Lock()
	tc, ok := ts.clients[k]
	if !ok {
		tc = &tenantClient{}
		ts.clients[k] = tc
	}
	ts.mu.Unlock()

	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.ts.Sender != nil && time.Since(tc.checked) < ts.checkEvery {
		return tc.ts, nil
	}
	creds, err := ts.db.TenantCredentials(ctx, tenantID)
	if err != nil {
		return TenantSender{}, fmt.Errorf("sender of tenant %d: %w", tenantID, err)
	}
	if tc.ts.Sender == nil || creds.Version != tc.ts.Scope.Version {
		s, err := build(ctx, creds, provider)
		if err != nil {
			return TenantSender{}, fmt.Errorf("sender of tenant %d: %w", tenantID, err)
		}
		tc.ts = TenantSender{Sender: s, Scope: Scope{TenantID: tenantID, Provider: provider, Version: creds.Version},
			PerSecond: creds.Rate(provider)}
	}
	tc.ts.AuthError = creds.AuthError(provider) != ""
	tc.checked = time.Now()
	return tc.ts, nil
}

// AuthCleared notes that the tenant's provider took its credentials again,
// so the next send does not clear the recorded error a second time.
func (ts *TenantSenders) AuthCleared(tenantID int64, provider string) {
	ts.mu.Lock()
	tc := ts.clients[senderKey{tenantID, provider}]
	ts.mu.Unlock()
	if tc != nil {
		tc.mu.Lock()
		tc.ts.AuthError = false
		tc.mu.Unlock()
	}
}

func build(ctx context.Context, c storage.Credentials, provider string) (Sender, error) {
	switch provider {
	case providers.FCM:
		if c.FCMProjectID == "" || len(c.FCMServiceAccount) == 0 {
			return nil, fmt.Errorf("fcm: %w", ErrNotConfigured)
		}
		return fcm.New(ctx, fcm.Config{ProjectID: c.FCMProjectID, ServiceAccountJSON: c.FCMServiceAccount,
			Endpoint: c.FCMEndpoint})
	case providers.APNs:
		if len(c.APNsKeyP8) == 0 || c.APNsKeyID == "" || c.APNsTeamID == "" || c.APNsTopic == "" {
			return nil, fmt.Errorf("apns: %w", ErrNotConfigured)
		}
		return apns.New(apns.Config{KeyP8: c.APNsKeyP8, KeyID: c.APNsKeyID, TeamID: c.APNsTeamID,
			Topic: c.APNsTopic, Host: c.APNsHost, RootCAs: c.APNsRootCA})
	}
	return nil, fmt.Errorf("provider %q: %w", provider, ErrNotConfigured)
}
