-- Retention: when the uploaded recording was deleted (RecordingDeleted); the result stays.
ALTER TABLE voice_tasks ADD COLUMN recording_deleted_at timestamptz;
CREATE INDEX voice_tasks_retention ON voice_tasks (completed_at) WHERE recording_deleted_at IS NULL;
