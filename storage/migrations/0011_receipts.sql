-- Reach, measured (issue 12): the app confirms each push it received and
-- showed. One row per (post, device), written in batches by the API's
-- receipt writer (package receipts); a later receipt for the same pair
-- keeps the earliest times, so a retried or repeated receipt changes
-- nothing.
--
-- No foreign key to devices: the history outlives a deleted device, as
-- deliveries do. A receipt is only stored for a (post, device) that has a
-- delivery: the write joins deliveries, so an app key (public) and a
-- device secret cannot count a post the device was never sent.
CREATE TABLE receipts (
    post_id      bigint NOT NULL REFERENCES posts ON DELETE CASCADE,
    device_id    bigint NOT NULL,
    received_at  timestamptz NOT NULL,
    displayed_at timestamptz,
    PRIMARY KEY (post_id, device_id),
    CHECK (displayed_at IS NULL OR displayed_at >= received_at)
) WITH (fillfactor = 80);
-- No other index: reach is read by post, which the primary key serves; the
-- second receipt of a pair (displayed after received) changes an unindexed
-- column, and the free fifth of each page keeps that update on its page
-- (HOT).
