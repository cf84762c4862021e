-- Webhooks of host platforms. `platforms.webhook_url`/`webhook_from` and `webhook_attempts` are
-- read models (from PlatformWebhookSet/Removed and WebhookAttempted); `webhook_progress` is the
-- sender's own state (not history): where each platform's deliveries are, and its retries.

ALTER TABLE platforms ADD COLUMN webhook_url text;
ALTER TABLE platforms ADD COLUMN webhook_from bigint;

CREATE TABLE webhook_attempts
(
    platform_id uuid        NOT NULL,
    cursor      bigint      NOT NULL,
    attempt     integer     NOT NULL,
    user_id     text        NOT NULL,
    outcome     text        NOT NULL,
    status      integer,
    error       text,
    at          timestamptz NOT NULL,
    PRIMARY KEY (platform_id, cursor, attempt)
);

CREATE TABLE webhook_progress
(
    platform_id     uuid PRIMARY KEY,
    url             text        NOT NULL,
    cursor          bigint      NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    failing_since   timestamptz,
    next_attempt_at timestamptz NOT NULL DEFAULT now()
);
