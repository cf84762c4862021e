-- Host platforms: the read model of the `platform` aggregate (the key hash stays in the events).

CREATE TABLE platforms
(
    platform_id   uuid PRIMARY KEY,
    name          text        NOT NULL,
    registered_at timestamptz NOT NULL,
    registered_by text        NOT NULL,
    revoked_at    timestamptz,
    revoked_by    text
);
