-- Alerts are incidents (issue 12): an alert and its follow-ups are one
-- incident, each message a post of its own; every post may carry its text in
-- several languages; exercises reach the tenant's test devices only; a
-- tenant may make alerts wait for a second person's approval.

-- incident_id is the id of the incident's first message (itself for the
-- first); msg_type is the message's place in it.
ALTER TABLE posts
    ADD COLUMN incident_id bigint REFERENCES posts ON DELETE CASCADE,
    ADD COLUMN msg_type text CHECK (msg_type IN ('alert', 'update', 'cancel')),
    ADD COLUMN exercise boolean NOT NULL DEFAULT false,
    -- language: the language of title and body, '' for the tenant's;
    -- translations: {"en": {"title": ..., "body": ...}, ...}.
    ADD COLUMN language text NOT NULL DEFAULT '',
    ADD COLUMN translations jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(translations) = 'object'),
    -- what an alert was, beyond the post: CAP's sender, identifier, sent,
    -- status, event, urgency, severity, certainty, area description and
    -- references, for the alert's CAP form (GET /v1/alerts/{id}).
    ADD COLUMN alert jsonb,
    -- when the alert was sent by its author (CAP sent), from which its
    -- reach's latency is measured; NULL: from created_at.
    ADD COLUMN origin_sent_at timestamptz,
    -- two-person release: the key that created the post, the key that
    -- approved it, and when an unapproved alert lapses.
    ADD COLUMN created_by_key bigint,
    ADD COLUMN approved_by_key bigint,
    ADD COLUMN approved_at timestamptz,
    ADD COLUMN lapses_at timestamptz,
    ADD CHECK ((incident_id IS NULL) = (msg_type IS NULL));
-- Every emergency post so far is the first message of an incident.
UPDATE posts SET incident_id = id, msg_type = 'alert' WHERE class = 'emergency';
CREATE INDEX posts_incident_idx ON posts (incident_id) WHERE incident_id IS NOT NULL;

ALTER TABLE posts DROP CONSTRAINT posts_state_check,
    ADD CONSTRAINT posts_state_check
        CHECK (state IN ('awaiting_approval', 'lapsed', 'accepted', 'dispatching', 'sending', 'cancelled'));

-- Test devices: staff phones the municipality marks; exercises and tests go
-- to them only.
ALTER TABLE devices ADD COLUMN test boolean NOT NULL DEFAULT false;
CREATE INDEX devices_test_idx ON devices (tenant_id) WHERE test AND active;

-- The tenant's default language (for a device whose language no text
-- has), and its alert release rule.
ALTER TABLE tenants
    ADD COLUMN language text NOT NULL DEFAULT 'nb',
    ADD COLUMN alert_approval boolean NOT NULL DEFAULT false,
    ADD COLUMN approval_ttl_seconds integer NOT NULL DEFAULT 1800 CHECK (approval_ttl_seconds > 0);
