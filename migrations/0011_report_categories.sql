-- What a user report is about (ReportFiled.category; `other` for reports from before it existed).

ALTER TABLE user_reports ADD COLUMN category text NOT NULL DEFAULT 'other';
CREATE INDEX user_reports_category ON user_reports (category, reported_user_id);
