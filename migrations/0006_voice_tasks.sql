-- Read model of the `voice_task` aggregate: status, queue order, result.
-- (The submitter's email stays in the event store only: it is a secret field of TaskSubmitted.)

CREATE TABLE voice_tasks
(
    task_id            uuid PRIMARY KEY,
    status             text        NOT NULL, -- authorized | queued | processing | completed | failed
    content_type       text        NOT NULL,
    content_length     bigint      NOT NULL,
    caller_number      text,
    language           text,
    email_notification boolean     NOT NULL DEFAULT false,
    authorized_at      timestamptz NOT NULL,
    submitted_at       timestamptz,
    queued_at          timestamptz,
    started_at         timestamptz,
    completed_at       timestamptz,
    attempts           integer     NOT NULL DEFAULT 0,
    worker_id          uuid,
    result             jsonb,
    error              text
);
CREATE INDEX voice_tasks_queue ON voice_tasks (queued_at) WHERE status = 'queued';
CREATE INDEX voice_tasks_status ON voice_tasks (status, submitted_at DESC);
