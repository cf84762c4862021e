-- Crypto-shredding: one key per data subject (e.g. `platform_user/<id>`). Personal data sealed
-- under it in events becomes unreadable everywhere at once when the key is destroyed (`key` set
-- to NULL, `erased_at` set). Never published: no event carries a key.
CREATE TABLE subject_keys
(
    subject    text PRIMARY KEY,
    key        bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at  timestamptz,
    CHECK ((key IS NULL) = (erased_at IS NOT NULL))
);
