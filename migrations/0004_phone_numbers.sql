-- Read models of the `phone_number` aggregate.

CREATE TABLE phone_reports
(
    report_id    uuid PRIMARY KEY,
    phone_number text        NOT NULL,
    category     text        NOT NULL,
    description  text,
    reporter_ip  text,
    counted      boolean     NOT NULL,
    status       text        NOT NULL, -- pending | approved | rejected | deleted
    created_at   timestamptz NOT NULL,
    decided_at   timestamptz,
    decided_by   text
);
CREATE INDEX phone_reports_number ON phone_reports (phone_number);
CREATE INDEX phone_reports_list ON phone_reports (status, created_at DESC, report_id);

-- One row per reported number: what a look-up returns, kept by the projector.
CREATE TABLE phone_numbers
(
    phone_number     text PRIMARY KEY,
    status           text        NOT NULL, -- dangerous | reported | unknown
    approved_reports integer     NOT NULL,
    pending_reports  integer     NOT NULL,
    categories       jsonb       NOT NULL,
    distinct_ips     integer     NOT NULL,
    last_reported_at timestamptz
);
