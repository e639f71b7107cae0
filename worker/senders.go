package worker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/crier-push/crier/providers"
	"github.com/crier-push/crier/providers/apns"
	"github.com/crier-push/crier/providers/fcm"
	"github.com/crier-push/crier/storage"
)

// TenantSenders builds one long-lived provider client per tenant and
// provider from the tenant's stored credentials, and rebuilds it when the
// credentials change (checked at most once per CheckEvery).
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
	version int64
	checked time.Time
	sender  Sender
	err     error
}

// NewTenantSenders makes a TenantSenders. checkEvery defaults to 10s.
func NewTenantSenders(db *storage.DB, checkEvery time.Duration) *TenantSenders {
	if checkEvery == 0 {
		checkEvery = 10 * time.Second
	}
	return &TenantSenders{db: db, checkEvery: checkEvery, clients: map[senderKey]*tenantClient{}}
}

// Sender returns the tenant's client of a provider.
func (ts *TenantSenders) Sender(ctx context.Context, tenantID int64, provider string) (Sender, error) {
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
	if tc.sender != nil && time.Since(tc.checked) < ts.checkEvery {
		return tc.sender, nil
	}
	v, err := ts.db.CredentialsVersion(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("sender of tenant %d: %w", tenantID, err)
	}
	if tc.sender != nil && v == tc.version {
		tc.checked = time.Now()
		return tc.sender, nil
	}
	creds, err := ts.db.TenantCredentials(ctx, tenantID)
	if err != nil {
		return nil, fmt.Errorf("sender of tenant %d: %w", tenantID, err)
	}
	s, err := build(ctx, creds, provider)
	if err != nil {
		return nil, fmt.Errorf("sender of tenant %d: %w", tenantID, err)
	}
	tc.sender, tc.version, tc.checked = s, creds.Version, time.Now()
	return s, nil
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
