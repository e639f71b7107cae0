-- Area codes (issue 12): the names other systems give an area, as CAP
-- geocodes do (valueName and value: kommunenummer 3907, EMMA_ID NO123,
-- NUTS3 FR821), so that an alert given only as geocodes is placed through
-- the tenant's areas that carry them.
--
-- codes: [{"name": "kommunenummer", "value": "3907"}, ...] as imported, for
-- showing; code_keys: one "lower(name)=value" per code, for the lookup
-- (names compared without case, values exactly). Both are written by
-- storage.ImportAreas, which makes the keys in one place.
ALTER TABLE areas
    ADD COLUMN codes jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(codes) = 'array'),
    ADD COLUMN code_keys text[] NOT NULL DEFAULT '{}';
CREATE INDEX areas_code_keys_idx ON areas USING gin (code_keys);
