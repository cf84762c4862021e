-- Read models are built only by the projector from the EVENTS stream and can be dropped and
-- rebuilt from it (invariant 4). Every projection's position is its checkpoint row, updated in
-- the same transaction as the rows it produced (invariant 2).

CREATE TABLE projector_checkpoints
(
    projection text PRIMARY KEY,
    stream_seq bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE admin_accounts
(
    username            text PRIMARY KEY,
    created_at          timestamptz NOT NULL,
    password_changed_at timestamptz,
    last_login_at       timestamptz,
    login_count         bigint      NOT NULL DEFAULT 0,
    logout_count        bigint      NOT NULL DEFAULT 0
);

CREATE TABLE admin_sessions
(
    token_id   uuid PRIMARY KEY,
    username   text        NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    ip         text,
    revoked_at timestamptz
);
CREATE INDEX admin_sessions_username ON admin_sessions (username, issued_at DESC);
