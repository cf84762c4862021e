//! Retention: what is kept, for how long. Each job is idempotent, evented and takes `now` as an
//! argument (the clock is injected: tests move it instead of waiting).
//!
//! ```text
//!  every hour  recordings of tasks that ended more than RECORDING_RETENTION_DAYS ago
//!              ─► object deleted from storage, then RecordingDeleted (the verdict stays)
//! ```
//! Runs on one janitor at a time (advisory lock).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres_es::PostgresCqrs;
use sqlx::PgPool;
use uuid::Uuid;
use write::commands::{execute, CommandContext, CommandError};
use write::domain::voice_task::{VoiceTask, VoiceTaskCommand};

/// Advisory-lock key of the retention jobs ("blretain").
const RETENTION_LOCK: i64 = 0x626c_7265_7461_696e;
/// Tasks handled per pass at most (the next pass takes the rest).
const BATCH: i64 = 500;

pub use common::retention::RetentionConfig;

pub struct Retention {
    pub pool: PgPool,
    pub tasks: Arc<PostgresCqrs<VoiceTask>>,
    pub storage: pipeline::storage::Storage,
    pub config: RetentionConfig,
}

impl Retention {
    pub fn new(
        pool: PgPool,
        storage: pipeline::storage::Storage,
        config: RetentionConfig,
    ) -> Retention {
        let tasks = Arc::new(cqrs_es::CqrsFramework::new(
            write::event_store::<VoiceTask>(&pool, events::voice_task::UPCASTERS),
            vec![],
            (),
        ));
        Retention {
            pool,
            tasks,
            storage,
            config,
        }
    }

    /// Deletes the recordings whose retention ended by `now`. Returns how many. A task whose
    /// recording cannot be deleted now (storage down, a re-analysis running) is taken again by
    /// the next pass.
    pub async fn recordings(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let mut lock = self.pool.begin().await?;
        let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RETENTION_LOCK)
            .fetch_one(&mut *lock)
            .await?;
        if !held {
            return Ok(0);
        }
        let due: Vec<(Uuid, Option<String>)> = sqlx::query_as(
            "SELECT t.task_id, e.payload->'UploadAuthorized'->>'objectKey'
               FROM voice_tasks t
               LEFT JOIN events e ON e.aggregate_type = $1 AND e.aggregate_id = t.task_id::text
                                 AND e.event_type = 'UploadAuthorized'
              WHERE t.status IN ('completed', 'failed') AND t.recording_deleted_at IS NULL
                AND t.reanalysis_batch IS NULL AND t.completed_at < $2
              ORDER BY t.completed_at LIMIT $3",
        )
        .bind(events::voice_task::AGGREGATE_TYPE)
        .bind(now - chrono::Duration::days(self.config.recording_days))
        .bind(BATCH)
        .fetch_all(&mut *lock)
        .await?;
        let ctx = CommandContext::new("system:retention", None);
        let mut deleted = 0;
        for (id, key) in due {
            let key = key.unwrap_or_else(|| format!("uploads/{id}"));
            // The object first: if the event were first and the deletion failed, nothing would
            // take the object again. Deleting twice is harmless.
            if let Err(e) = self.storage.delete(&key).await {
                tracing::warn!(task = %id, error = %e, "recording not deleted yet; next pass");
                continue;
            }
            let cmd = VoiceTaskCommand::DeleteRecording {
                reason: format!(
                    "retention: {} days after the task ended",
                    self.config.recording_days
                ),
            };
            match execute(&self.tasks, &id.to_string(), cmd, &ctx).await {
                Ok(_) => deleted += 1,
                // A re-analysis took it between the query and now (it fails without the
                // recording, and the next pass records the deletion).
                Err(CommandError::Domain(e)) => {
                    tracing::info!(task = %id, error = %e, "recording deletion deferred")
                }
                Err(e) => return Err(anyhow::anyhow!("{e}")),
            }
        }
        lock.commit().await?;
        if deleted > 0 {
            metrics::counter!("recordings_deleted_total").increment(deleted as u64);
            tracing::info!(deleted, "recordings past retention deleted");
        }
        Ok(deleted)
    }

    /// Runs every job once an hour (and once at start) until `shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {
                    if let Err(e) = self.recordings(Utc::now()).await {
                        tracing::warn!(error = %e, "recording retention failed; next pass in an hour");
                    }
                }
            }
        }
    }
}
