-- Every delivery is written twice: by the snapshot, then by its outcome.
-- Pages the snapshot leaves a quarter empty let the outcome's new row
-- version stay on its page (a HOT update): no new primary-key entry, and
-- the old version is pruned when the page is next read.
ALTER TABLE deliveries SET (fillfactor = 60);
