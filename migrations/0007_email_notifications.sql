-- Verdict emails sent (one per task), written by the api's notifier.
CREATE TABLE email_notifications
(
    task_id     uuid PRIMARY KEY,
    sent_at     timestamptz NOT NULL,
    provider_id text
);
