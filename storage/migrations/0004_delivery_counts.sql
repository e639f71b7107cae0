-- A post's deliveries counted by state, kept by triggers on deliveries, so
-- that a post's progress (GET /v1/posts/{id}) is read from a few rows rather
-- than counted over its whole audience (0.2-0.5 s for 800,000 deliveries,
-- asked for every few seconds while a large post goes out).
--
-- Each statement that updates deliveries adds its changes, by post and
-- state, to one of 16 slots (by backend), so that workers writing outcomes
-- of the same post at once do not queue on one row; a read sums the slots.
-- Inserts (the audience snapshot, a long statement under the post's lock)
-- count in a slot of their own, 16, so that outcomes of an alert's first
-- page never wait for the rest of its snapshot.
--
-- No foreign key to posts: its check would lock the post row (FOR KEY
-- SHARE), which a cancellation holds FOR UPDATE while it waits for the
-- deliveries an outcome statement holds: a deadlock. Posts and deliveries
-- are never deleted.
CREATE TABLE delivery_counts (
    post_id       bigint   NOT NULL,
    state         text     NOT NULL,
    slot          smallint NOT NULL,
    n             bigint   NOT NULL,
    first_sent_at timestamptz,
    last_sent_at  timestamptz,
    PRIMARY KEY (post_id, state, slot)
);

CREATE FUNCTION count_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO delivery_counts AS c (post_id, state, slot, n, first_sent_at, last_sent_at)
        SELECT post_id, state, 16, count(*), min(sent_at), max(sent_at)
        FROM new_rows GROUP BY post_id, state ORDER BY post_id, state
        ON CONFLICT (post_id, state, slot) DO UPDATE SET n = c.n + excluded.n,
            first_sent_at = least(c.first_sent_at, excluded.first_sent_at),
            last_sent_at = greatest(c.last_sent_at, excluded.last_sent_at);
    ELSE
        INSERT INTO delivery_counts AS c (post_id, state, slot, n, first_sent_at, last_sent_at)
        SELECT post_id, state, pg_backend_pid() % 16, sum(d), min(sent_at), max(sent_at)
        FROM (SELECT post_id, state, -1 AS d, NULL::timestamptz AS sent_at FROM old_rows
              UNION ALL
              SELECT post_id, state, 1, sent_at FROM new_rows) AS changes
        GROUP BY post_id, state
        HAVING sum(d) <> 0 OR max(sent_at) IS NOT NULL
        ORDER BY post_id, state
        ON CONFLICT (post_id, state, slot) DO UPDATE SET n = c.n + excluded.n,
            first_sent_at = least(c.first_sent_at, excluded.first_sent_at),
            last_sent_at = greatest(c.last_sent_at, excluded.last_sent_at);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_counted_on_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_deliveries();

CREATE TRIGGER deliveries_counted_on_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_deliveries();

-- The deliveries there are already.
INSERT INTO delivery_counts (post_id, state, slot, n, first_sent_at, last_sent_at)
SELECT post_id, state, 0, count(*), min(sent_at), max(sent_at) FROM deliveries GROUP BY post_id, state;
