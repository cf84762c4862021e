-- Reports by who filed them: the reporter's standing (weighted reports), the right of access.
CREATE INDEX user_reports_reporter ON user_reports (reporter_user_id, created_at);
