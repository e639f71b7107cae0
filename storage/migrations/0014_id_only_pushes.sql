-- ID-only pushes (issue 13): a tenant may keep its posts' content away from
-- Google and Apple. Its pushes then carry the post id and a generic text in
-- the device's language; the app fetches the content from crier
-- (GET /v1/devices/{installation_id}/posts/{post}). Emergency posts carry
-- their text whatever the setting: a phone must show an alert without a
-- network round trip. Read with every post (storage.Post.IDOnlyPushes), so
-- the send path asks nothing more of the database.
ALTER TABLE tenants ADD COLUMN id_only_pushes boolean NOT NULL DEFAULT false;
