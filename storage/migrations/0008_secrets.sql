-- Provider credentials are sealed at rest (package secrets): AES-256-GCM
-- under the operator's master key, each value bound to its tenant and
-- column, and starting with its format's version byte, 1. Values stored
-- before this migration are in the clear (JSON or PEM, which never start
-- with that byte); crier seals each the first time it reads it, and
-- `crier secrets rotate` seals any left.
--
-- From now on the database itself refuses to store one of these columns
-- in the clear, whatever code writes it.
CREATE FUNCTION secret_sealed(v bytea) RETURNS boolean LANGUAGE sql IMMUTABLE
    AS $$ SELECT v IS NULL OR substring(v FROM 1 FOR 1) = '\x01'::bytea $$;

CREATE FUNCTION refuse_unsealed_secret() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'tenants.% must be sealed (package secrets), not stored in the clear', TG_ARGV[0]
        USING ERRCODE = 'check_violation';
END
$$;

CREATE TRIGGER fcm_service_account_sealed BEFORE INSERT OR UPDATE OF fcm_service_account ON tenants
    FOR EACH ROW WHEN (NOT secret_sealed(NEW.fcm_service_account))
    EXECUTE FUNCTION refuse_unsealed_secret('fcm_service_account');
CREATE TRIGGER apns_key_p8_sealed BEFORE INSERT OR UPDATE OF apns_key_p8 ON tenants
    FOR EACH ROW WHEN (NOT secret_sealed(NEW.apns_key_p8))
    EXECUTE FUNCTION refuse_unsealed_secret('apns_key_p8');
CREATE TRIGGER apns_root_ca_sealed BEFORE INSERT OR UPDATE OF apns_root_ca ON tenants
    FOR EACH ROW WHEN (NOT secret_sealed(NEW.apns_root_ca))
    EXECUTE FUNCTION refuse_unsealed_secret('apns_root_ca');

COMMENT ON COLUMN tenants.fcm_service_account IS 'sealed by package secrets (AES-256-GCM, bound to tenant and column)';
COMMENT ON COLUMN tenants.apns_key_p8 IS 'sealed by package secrets (AES-256-GCM, bound to tenant and column)';
COMMENT ON COLUMN tenants.apns_root_ca IS 'sealed by package secrets, so that it cannot be swapped unseen';
