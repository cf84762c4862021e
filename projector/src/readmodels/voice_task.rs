//! `voice_tasks`: each task's status, queue order and result.

use events::voice_task::{VoiceTaskEvent, UPCASTERS};
use events::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::apply::ApplyError;

pub async fn apply(tx: &mut PgConnection, env: &Envelope) -> Result<(), ApplyError> {
    let event: VoiceTaskEvent = env
        .decode(UPCASTERS)
        .map_err(|e| ApplyError::Poison(e.to_string()))?;
    let id = Uuid::parse_str(&env.aggregate_id).map_err(|e| ApplyError::Poison(e.to_string()))?;
    let at = env.occurred_at;
    let q = match event {
        VoiceTaskEvent::UploadAuthorized { content_type, content_length, .. } => sqlx::query(
            "INSERT INTO voice_tasks (task_id, status, content_type, content_length, authorized_at)
             VALUES ($1, 'authorized', $3, $4, $2) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(at)
        .bind(content_type)
        .bind(content_length as i64),
        VoiceTaskEvent::TaskSubmitted { caller_number, language, email_notification, .. } => sqlx::query(
            "UPDATE voice_tasks SET status = 'queued', submitted_at = $2, queued_at = $2, caller_number = $3,
                    language = $4, email_notification = $5 WHERE task_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(caller_number)
        .bind(language)
        .bind(email_notification),
        VoiceTaskEvent::TaskStarted { worker_id, attempt } => sqlx::query(
            "UPDATE voice_tasks SET status = 'processing', started_at = $2, worker_id = $3, attempts = $4
              WHERE task_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(worker_id)
        .bind(attempt as i32),
        VoiceTaskEvent::TaskCompleted { worker_id, result } => sqlx::query(
            "UPDATE voice_tasks SET status = 'completed', completed_at = $2, worker_id = $3, result = $4, error = NULL
              WHERE task_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(worker_id)
        .bind(serde_json::to_value(&result).unwrap_or_default()),
        VoiceTaskEvent::TaskFailed { reason, attempts, .. } => sqlx::query(
            "UPDATE voice_tasks SET status = 'failed', completed_at = $2, error = $3, attempts = greatest(attempts, $4)
              WHERE task_id = $1",
        )
        .bind(id)
        .bind(at)
        .bind(reason)
        .bind(attempts as i32),
        VoiceTaskEvent::TaskRequeued { .. } => sqlx::query(
            "UPDATE voice_tasks SET status = 'queued', queued_at = $2, completed_at = NULL, error = NULL,
                    started_at = NULL, attempts = 0 WHERE task_id = $1",
        )
        .bind(id)
        .bind(at),
    };
    q.execute(&mut *tx).await?;
    Ok(())
}
