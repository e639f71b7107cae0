-- Keys can be managed: a key's name becomes its label (the person or
-- system it belongs to), and authentication notes when it was last used,
-- at most once a minute (see Authenticate). A revoked_at in the future is
-- a rotation's grace period: the key works until then.
ALTER TABLE api_keys RENAME COLUMN name TO label;
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);
CREATE INDEX api_keys_prefix ON api_keys (prefix);

-- The audit log: every action taken with a key or by the operator, one row
-- each, never changed. Who acted is copied into the row (the key's label,
-- the publisher's slug) as it was then, so a row says what happened even
-- after the key or the publisher is gone; and there are no foreign keys,
-- whose cascades would delete rows.
CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    at             timestamptz NOT NULL DEFAULT now(),
    tenant_id      bigint NOT NULL,
    -- actor: 'key' (key_id is the key the request came with) or 'operator'
    -- (the crier command line).
    actor          text NOT NULL CHECK (actor IN ('key', 'operator')),
    key_id         bigint,
    key_label      text NOT NULL DEFAULT '',
    publisher_id   bigint,
    publisher_slug text NOT NULL DEFAULT '',
    action         text NOT NULL,
    object         text NOT NULL DEFAULT '',
    request_id     text NOT NULL DEFAULT '',
    detail         jsonb NOT NULL DEFAULT '{}',
    CHECK ((actor = 'key') = (key_id IS NOT NULL))
);

-- GET /v1/audit reads a tenant's rows newest first, paged by id.
CREATE INDEX audit_log_tenant ON audit_log (tenant_id, id DESC);

-- Append-only, whoever connects: privileges do not bind the table's owner
-- (crier connects as it), triggers do. Removing the triggers takes a
-- migration, which is itself on record.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
