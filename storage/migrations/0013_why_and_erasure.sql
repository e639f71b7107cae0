-- "Why did I get this?" and erasure (issue 13).
--
-- why: the rule that put the device in the post's audience, as the
-- snapshot found it (segments.CompileWhy's text: rule|detail|area|via|name,
-- e.g. "interest|fotball|||" or "alert||3907|place|Hjemme"). Empty for
-- deliveries snapshotted before this migration.
ALTER TABLE deliveries ADD COLUMN why text NOT NULL DEFAULT '';

-- Erasure: a deleted device's deliveries and receipts stay (the posts'
-- counts stay right) but lose their link to it: each row's device_id
-- becomes a fresh negative number from this sequence, unrelated to any
-- device and to the device's other rows.
CREATE SEQUENCE erased_device_ids;
