-- Per tenant and provider: the send rate crier holds itself to (FCM's default
-- quota is 600,000 messages a minute per project), and the last time the
-- provider refused the tenant's credentials, so posts can say why their
-- sends are paused.
ALTER TABLE tenants
    ADD COLUMN fcm_rate_per_second  integer NOT NULL DEFAULT 10000 CHECK (fcm_rate_per_second > 0),
    ADD COLUMN apns_rate_per_second integer NOT NULL DEFAULT 10000 CHECK (apns_rate_per_second > 0),
    ADD COLUMN fcm_auth_error  text,
    ADD COLUMN fcm_auth_error_at  timestamptz,
    ADD COLUMN apns_auth_error text,
    ADD COLUMN apns_auth_error_at timestamptz;
