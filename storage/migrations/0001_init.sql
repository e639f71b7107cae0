-- crier's schema, designed for the whole of DESIGN.md: tenants with their
-- provider credentials, publishers and their API keys, feeds, areas, devices
-- with every choice a resident can make, posts with their targeting, and one
-- delivery row per (post, device).

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE tenants (
    id          bigserial PRIMARY KEY,
    slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text NOT NULL,
    time_zone   text NOT NULL DEFAULT 'Europe/Oslo',
    -- FCM: the service account key file is a secret; it never leaves storage
    -- except to build the provider client.
    fcm_project_id      text,
    fcm_service_account bytea,
    fcm_endpoint        text,
    -- APNs token (.p8) authentication.
    apns_key_p8   bytea,
    apns_key_id   text,
    apns_team_id  text,
    apns_topic    text,
    apns_host     text,
    apns_root_ca  bytea,        -- extra CA to trust (the emulator's); NULL for Apple
    credentials_version bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE publishers (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    slug        text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('municipality', 'organisation')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, slug),
    UNIQUE (tenant_id, id)
);

-- API keys are random and long, so a SHA-256 of the key is enough to store;
-- the prefix lets an operator tell keys apart without the secret.
CREATE TABLE api_keys (
    id           bigserial PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    publisher_id bigint REFERENCES publishers ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('app', 'publisher')),
    prefix       text NOT NULL,
    hash         bytea NOT NULL UNIQUE,
    name         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CHECK ((kind = 'app') = (publisher_id IS NULL))
);

CREATE TABLE feeds (
    id           bigserial PRIMARY KEY,
    tenant_id    bigint NOT NULL,
    publisher_id bigint NOT NULL,
    slug         text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name         text NOT NULL,
    mandatory    boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, slug),
    FOREIGN KEY (tenant_id, publisher_id) REFERENCES publishers (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE areas (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    slug        text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name        text NOT NULL,
    geom        geometry(MultiPolygon, 4326) NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, slug)
);
CREATE INDEX areas_geom_idx ON areas USING gist (geom);

-- A device holds the resident's choices. Follows, mutes and areas are arrays
-- of ids with GIN indexes: the audience query tests membership for a million
-- rows at once, which arrays answer from one index without a join.
CREATE TABLE devices (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    installation_id text NOT NULL,
    provider        text NOT NULL CHECK (provider IN ('fcm', 'apns')),
    platform        text NOT NULL CHECK (platform IN ('android', 'ios')),
    token           text NOT NULL,
    locale          text NOT NULL DEFAULT 'nb',
    time_zone       text NOT NULL DEFAULT 'Europe/Oslo',
    app_version     text NOT NULL DEFAULT '',
    follows         bigint[] NOT NULL DEFAULT '{}',
    mutes           bigint[] NOT NULL DEFAULT '{}',
    interests       text[] NOT NULL DEFAULT '{}',
    areas           bigint[] NOT NULL DEFAULT '{}',
    -- places: [{"name": "home", "lat": 59.13, "lon": 10.22}], as the app sent
    -- them; place_geom is the same points for the spatial index.
    places          jsonb NOT NULL DEFAULT '[]',
    place_geom      geometry(MultiPoint, 4326),
    quiet_start     time,
    quiet_end       time,
    active          boolean NOT NULL DEFAULT true,
    deactivated_at  timestamptz,
    deactivated_reason text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, installation_id),
    UNIQUE (tenant_id, provider, token),
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);
CREATE INDEX devices_follows_idx ON devices USING gin (follows);
CREATE INDEX devices_interests_idx ON devices USING gin (interests);
CREATE INDEX devices_areas_idx ON devices USING gin (areas);
CREATE INDEX devices_place_geom_idx ON devices USING gist (place_geom);
CREATE INDEX devices_tenant_active_idx ON devices (tenant_id) WHERE active;

CREATE TABLE posts (
    id            bigserial PRIMARY KEY,
    tenant_id     bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    feed_id       bigint NOT NULL REFERENCES feeds ON DELETE CASCADE,
    publisher_id  bigint NOT NULL REFERENCES publishers ON DELETE CASCADE,
    external_id   text,
    title         text NOT NULL,
    body          text NOT NULL,
    url           text NOT NULL DEFAULT '',
    data          jsonb NOT NULL DEFAULT '{}',
    tags          text[] NOT NULL DEFAULT '{}',
    class         text NOT NULL CHECK (class IN ('community', 'official', 'emergency')),
    -- targeting: a geographic target and/or an explicit segment expression.
    target        geometry(MultiPolygon, 4326),
    segment       jsonb,
    collapse_key  text NOT NULL DEFAULT '',
    publish_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    -- accepted -> dispatching -> sending; or cancelled.
    state         text NOT NULL DEFAULT 'accepted'
                  CHECK (state IN ('accepted', 'dispatching', 'sending', 'cancelled')),
    audience      integer,
    snapshot_at   timestamptz,
    dispatch_cursor bigint NOT NULL DEFAULT 0,
    dispatched_at timestamptz,
    cancelled_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (publisher_id, external_id)
);
CREATE INDEX posts_tenant_created_idx ON posts (tenant_id, created_at DESC);

-- One row per (post, device): the audience snapshot and each send's fate. No
-- foreign key to devices, so history outlives a deleted device.
CREATE TABLE deliveries (
    post_id      bigint NOT NULL REFERENCES posts ON DELETE CASCADE,
    device_id    bigint NOT NULL,
    provider     text NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'sent', 'failed', 'dead_token', 'deferred',
                                  'skipped', 'cancelled', 'expired')),
    reason       text NOT NULL DEFAULT '',
    attempts     integer NOT NULL DEFAULT 0,
    last_error   text NOT NULL DEFAULT '',
    provider_message_id text NOT NULL DEFAULT '',
    not_before   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, device_id)
);
-- No other index: a snapshot writes up to millions of rows at once, and every
-- query of deliveries is by post (and device), which the primary key serves.
