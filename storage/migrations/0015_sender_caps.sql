-- Caps per sender (issue 13): the municipality limits how many posts each
-- organisation sends a day, and how many pushes of one organisation a
-- device gets a day, so that one eager club cannot drown out the others
-- on the residents' phones. The municipality's own posts, posts in a
-- mandatory feed and alerts are never capped (crier.Principal.PostCapped).
--
-- daily_post_limit: posts in any 24 hours (a rolling window, see
-- storage/caps.go); NULL is the tenant's default below, so that a tenant
-- can move every organisation it has not set by hand at once.
-- daily_pushes_per_device: pushes of the organisation's posts one device
-- gets in 24 hours; NULL is no limit, which is how crier behaved before
-- the cap (the digest of what a cap holds back is not built yet, so no
-- push is held unless the municipality asks for it).
-- Both at most 1000 (crier.MaxDailyPosts, crier.MaxDailyPushesPerDevice):
-- a higher figure is a typing error, not a limit.
ALTER TABLE publishers
    ADD COLUMN daily_post_limit integer CHECK (daily_post_limit BETWEEN 1 AND 1000),
    ADD COLUMN daily_pushes_per_device integer CHECK (daily_pushes_per_device BETWEEN 1 AND 1000);

-- The tenant's default daily post limit. 20: a match day's or a
-- festival's running updates fit (kick-off, goals, the final score), and
-- beyond that a club's followers start muting it; a busy organisation
-- gets more from the municipality by name.
ALTER TABLE tenants
    ADD COLUMN default_daily_post_limit integer NOT NULL DEFAULT 20
        CHECK (default_daily_post_limit BETWEEN 1 AND 1000);

-- The cap counts a publisher's posts of the last 24 hours on every
-- capped create: this keeps that count to the publisher's own recent
-- rows, however many posts the tenant has.
CREATE INDEX posts_publisher_created_idx ON posts (publisher_id, created_at);
