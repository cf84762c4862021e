-- Read models of the `platform_user` aggregate: profiles, IPs, reports, bans, reviews.

CREATE TABLE platform_users
(
    user_id       text PRIMARY KEY,
    name          text,
    picture       text,
    video         text,
    first_seen_at timestamptz NOT NULL,
    ban_status    text        NOT NULL DEFAULT 'none',
    banned_at     timestamptz,
    banned_reason text,
    report_count  integer     NOT NULL DEFAULT 0,
    review_status text,
    reviewed_at   timestamptz,
    reviewed_by   text,
    ban_count     integer     NOT NULL DEFAULT 0
);
CREATE INDEX platform_users_pending ON platform_users (banned_at) WHERE review_status = 'pending';
CREATE INDEX platform_users_ban ON platform_users (ban_status, banned_at DESC, user_id);

CREATE TABLE user_ips
(
    user_id       text        NOT NULL,
    ip            text        NOT NULL,
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, ip)
);
CREATE INDEX user_ips_ip ON user_ips (ip);

CREATE TABLE user_reports
(
    report_id        uuid PRIMARY KEY,
    reported_user_id text        NOT NULL,
    reporter_user_id text        NOT NULL,
    reporter_ip      text,
    reason           text,
    room_id          uuid,
    created_at       timestamptz NOT NULL,
    report_count     integer     NOT NULL
);
CREATE INDEX user_reports_reported ON user_reports (reported_user_id, created_at DESC);
CREATE INDEX user_reports_time ON user_reports (created_at DESC, report_id);

-- One row per (IP, banned user): an IP stays banned while any banned user holds it.
CREATE TABLE ip_bans
(
    ip        text        NOT NULL,
    user_id   text        NOT NULL,
    banned_at timestamptz NOT NULL,
    PRIMARY KEY (ip, user_id)
);
CREATE INDEX ip_bans_user ON ip_bans (user_id);

CREATE TABLE ban_reviews
(
    user_id     text        NOT NULL,
    decision    text        NOT NULL,
    reviewer    text        NOT NULL,
    banned_at   timestamptz NOT NULL,
    reviewed_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, reviewed_at)
);

-- Operational counters per api instance (not event-sourced): see api/src/evasion.rs.
CREATE TABLE api_counters
(
    instance_id uuid        NOT NULL,
    name        text        NOT NULL,
    value       bigint      NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (instance_id, name)
);
