-- A post's geographic target is kept as the JSON the publisher sent (area
-- slugs, a GeoJSON polygon, or a point and radius), like its segment: the
-- segment compiler turns both into SQL when the post is dispatched, against
-- the areas as they are then.
ALTER TABLE posts DROP COLUMN target;
ALTER TABLE posts ADD COLUMN target jsonb;
