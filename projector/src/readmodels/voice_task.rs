//! `voice_tasks`: each task's status, queue order and result (with every earlier result of a
//! re-analysis in `previous_results`); `reanalysis_batches`: the progress of each batch.

use events::voice_task::{VoiceTaskEvent, UPCASTERS};
use events::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::effects::ApplyError;

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
        VoiceTaskEvent::TaskStarted {
            worker_id, attempt, ..
        } => sqlx::query(
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
        // Who runs a re-analysis matters to the aggregate only (its result names the worker).
        VoiceTaskEvent::TaskReanalysisStarted { .. } => return Ok(()),
        VoiceTaskEvent::TaskReanalysisRequested { batch_id, by } => {
            sqlx::query(
                "INSERT INTO reanalysis_batches (batch_id, requested_by, requested_at, total, updated_at)
                 VALUES ($1, $2, $3, 1, $3)
                 ON CONFLICT (batch_id) DO UPDATE SET total = reanalysis_batches.total + 1, updated_at = $3",
            )
            .bind(batch_id)
            .bind(by)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE voice_tasks SET reanalysis_batch = $2 WHERE task_id = $1")
                .bind(id)
                .bind(batch_id)
        }
        VoiceTaskEvent::TaskReanalysed { batch_id, worker_id, result } => {
            let changed: Option<bool> = sqlx::query_scalar(
                "SELECT result->>'verdict' IS DISTINCT FROM $2 FROM voice_tasks WHERE task_id = $1",
            )
            .bind(id)
            .bind(&result.verdict)
            .fetch_optional(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE reanalysis_batches SET done = done + 1, changed_verdict = changed_verdict + $2::int,
                        updated_at = $3 WHERE batch_id = $1",
            )
            .bind(batch_id)
            .bind(changed.unwrap_or(false) as i32)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE voice_tasks SET
                    previous_results = previous_results || jsonb_build_array(jsonb_build_object(
                        'result', result, 'completedAt', coalesce(reanalysed_at, completed_at))),
                    result = $3, worker_id = $4, reanalysed_at = $2, reanalysis_batch = NULL
                  WHERE task_id = $1",
            )
            .bind(id)
            .bind(at)
            .bind(serde_json::to_value(&result).unwrap_or_default())
            .bind(worker_id)
        }
        VoiceTaskEvent::TaskReanalysisFailed { batch_id, .. } => {
            sqlx::query(
                "UPDATE reanalysis_batches SET failed = failed + 1, updated_at = $2 WHERE batch_id = $1",
            )
            .bind(batch_id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE voice_tasks SET reanalysis_batch = NULL WHERE task_id = $1").bind(id)
        }
        VoiceTaskEvent::RecordingDeleted { .. } => {
            sqlx::query("UPDATE voice_tasks SET recording_deleted_at = $2 WHERE task_id = $1")
                .bind(id)
                .bind(at)
        }
    };
    q.execute(&mut *tx).await?;
    Ok(())
}
