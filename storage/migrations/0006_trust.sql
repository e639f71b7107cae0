-- The trust boundary: the tenant's catalogue of interests and the ones the
-- municipality grants each organisation; a secret per device installation;
-- tokens unique among live installations only, so a token that moves leaves
-- its old installation behind deactivated; and references that carry the
-- tenant, so no key, post or feed of one tenant can point at another's.

CREATE TABLE interests (
    tenant_id   bigint NOT NULL REFERENCES tenants ON DELETE CASCADE,
    slug        text NOT NULL CHECK (char_length(slug) BETWEEN 1 AND 64), -- crier.ValidTag
    -- names for the app to show, by language: {"nb": "Fotball", "en": "Football"}
    names       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(names) = 'object'),
    position    integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, slug)
);

CREATE TABLE interest_grants (
    tenant_id    bigint NOT NULL,
    publisher_id bigint NOT NULL,
    interest     text NOT NULL,
    PRIMARY KEY (tenant_id, publisher_id, interest),
    FOREIGN KEY (tenant_id, publisher_id) REFERENCES publishers (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, interest) REFERENCES interests (tenant_id, slug) ON DELETE CASCADE
);

-- The device secret's SHA-256 (it is 256 random bits: no slow hash needed).
-- NULL for installations registered before secrets: the app claims one by
-- presenting the token it holds (README, "Device secrets").
ALTER TABLE devices ADD COLUMN secret_hash bytea;

ALTER TABLE devices DROP CONSTRAINT devices_tenant_id_provider_token_key;
CREATE UNIQUE INDEX devices_live_token_idx ON devices (tenant_id, provider, token) WHERE active;

ALTER TABLE feeds ADD CONSTRAINT feeds_tenant_id_id_key UNIQUE (tenant_id, id);

ALTER TABLE posts DROP CONSTRAINT posts_feed_id_fkey,
    ADD CONSTRAINT posts_tenant_feed_fkey FOREIGN KEY (tenant_id, feed_id)
        REFERENCES feeds (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE posts DROP CONSTRAINT posts_publisher_id_fkey,
    ADD CONSTRAINT posts_tenant_publisher_fkey FOREIGN KEY (tenant_id, publisher_id)
        REFERENCES publishers (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_publisher_id_fkey,
    ADD CONSTRAINT api_keys_tenant_publisher_fkey FOREIGN KEY (tenant_id, publisher_id)
        REFERENCES publishers (tenant_id, id) ON DELETE CASCADE;
-- A post's feed belongs to its publisher's tenant, and an organisation's
-- post to one of its own feeds: the feed's publisher is the post's, or the
-- post's publisher is the municipality (checked by the service; the
-- tenant is what the schema holds).
