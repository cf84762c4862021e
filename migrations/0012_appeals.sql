-- Appeals of user bans (BanAppealed / AppealDecided) and disputes of listed phone numbers
-- (NumberDisputed / DisputeDecided). Contact emails are never here: they stay in the event store.

CREATE TABLE ban_appeals
(
    appeal_id  uuid PRIMARY KEY,
    user_id    text        NOT NULL,
    text       text        NOT NULL,
    banned_at  timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    -- pending | upheld | overturned
    status     text        NOT NULL DEFAULT 'pending',
    decided_at timestamptz,
    decided_by text,
    note       text
);
CREATE INDEX ban_appeals_queue ON ban_appeals (status, created_at, appeal_id);
CREATE INDEX ban_appeals_user ON ban_appeals (user_id, created_at DESC);

CREATE TABLE phone_disputes
(
    dispute_id   uuid PRIMARY KEY,
    phone_number text        NOT NULL,
    text         text        NOT NULL,
    created_at   timestamptz NOT NULL,
    -- pending | upheld | overturned
    status       text        NOT NULL DEFAULT 'pending',
    decided_at   timestamptz,
    decided_by   text,
    note         text
);
CREATE INDEX phone_disputes_queue ON phone_disputes (status, created_at, dispute_id);
CREATE INDEX phone_disputes_number ON phone_disputes (phone_number, created_at DESC);

-- What each user report counted towards the auto-ban threshold (ReportFiled.weight; 1 before).
ALTER TABLE user_reports ADD COLUMN weight double precision NOT NULL DEFAULT 1;

-- Emails and admin alerts sent once (idempotency key → when), written by the notifier.
CREATE TABLE notifications_sent
(
    key         text PRIMARY KEY,
    sent_at     timestamptz NOT NULL,
    provider_id text
);

-- Admin alerts that fire once until re-armed (e.g. pending reviews over the threshold).
CREATE TABLE admin_alerts
(
    kind       text PRIMARY KEY,
    active     boolean     NOT NULL,
    changed_at timestamptz NOT NULL
);
