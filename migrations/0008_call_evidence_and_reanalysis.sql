-- Evidence from analysed calls (issue 9): a phone report filed by the voice pipeline when a call
-- from the number was judged a scam carries the task's id; the number's summary counts them.
ALTER TABLE phone_reports ADD COLUMN task_id UUID;
ALTER TABLE phone_numbers ADD COLUMN flagged_calls INTEGER NOT NULL DEFAULT 0;

-- Re-analysis (issue 9): a completed task can be analysed again with today's analyzer; every
-- earlier result is kept beside the current one, and each batch shows its progress.
ALTER TABLE voice_tasks ADD COLUMN previous_results jsonb NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE voice_tasks ADD COLUMN reanalysis_batch uuid;
ALTER TABLE voice_tasks ADD COLUMN reanalysed_at timestamptz;

CREATE TABLE reanalysis_batches
(
    batch_id        uuid PRIMARY KEY,
    requested_by    text        NOT NULL,
    requested_at    timestamptz NOT NULL,
    total           integer     NOT NULL DEFAULT 0,
    done            integer     NOT NULL DEFAULT 0,
    failed          integer     NOT NULL DEFAULT 0,
    changed_verdict integer     NOT NULL DEFAULT 0,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX reanalysis_batches_recent ON reanalysis_batches (requested_at DESC);
