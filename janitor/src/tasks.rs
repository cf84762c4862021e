//! No task is ever lost (invariant 3):
//!
//! ```text
//!  $JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.TASKS.workers ─► TaskFailed (retryable) + job removed
//!  every 15 s: a queued or processing task (or a completed one awaiting re-analysis) whose job
//!              is gone from TASKS ─► dispatched again
//!              a task processing far longer than every delivery could take ─► TaskFailed
//! ```
//! Reconciliation runs on one janitor at a time (advisory lock).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::RawMessageErrorKind;
use futures::StreamExt;
use pipeline::dispatch::Dispatcher;
use postgres_es::PostgresCqrs;
use sqlx::PgPool;
use uuid::Uuid;
use write::commands::{execute, CommandContext, CommandError};
use write::domain::voice_task::{TaskStatus, VoiceTask, VoiceTaskCommand};

/// Advisory-lock key of the reconciler ("blrecon").
const RECONCILE_LOCK: i64 = 0x0062_6c72_6563_6f6e;
/// A queued task gets this long to show up in TASKS before it is re-dispatched.
pub const DISPATCH_GRACE: Duration = Duration::from_secs(30);
/// A safety net only: a worker that dies stops its in-progress acks and JetStream redelivers the
/// job after ack_wait, so this cap fires only for an analysis still "processing" long after any
/// worker could be on it. Above the worker's own time budget for a 30-minute call at its default
/// speed (Whisper at ~0.2× real time: about 6 minutes; budget 60 s per audio minute: 30 minutes).
pub const PROCESSING_LIMIT: Duration = Duration::from_secs(35 * 60);

pub struct TaskCare {
    pub pool: PgPool,
    pub tasks: Arc<PostgresCqrs<VoiceTask>>,
    pub dispatcher: Dispatcher,
    /// [`DISPATCH_GRACE`] and [`PROCESSING_LIMIT`], replaceable in tests.
    pub grace: Duration,
    pub processing_limit: Duration,
}

impl TaskCare {
    pub fn new(
        pool: PgPool,
        js: async_nats::jetstream::Context,
        storage: pipeline::storage::Storage,
    ) -> TaskCare {
        let store = Arc::new(write::event_store::<VoiceTask>(
            &pool,
            events::voice_task::UPCASTERS,
        ));
        let tasks = Arc::new(cqrs_es::CqrsFramework::new(
            write::event_store::<VoiceTask>(&pool, events::voice_task::UPCASTERS),
            vec![],
            (),
        ));
        TaskCare {
            dispatcher: Dispatcher { store, storage, js },
            pool,
            tasks,
            grace: DISPATCH_GRACE,
            processing_limit: PROCESSING_LIMIT,
        }
    }
}

fn ctx() -> CommandContext {
    CommandContext::new("system:janitor", None)
}

impl TaskCare {
    /// Handles one max-deliveries advisory: the task fails (retryable by an admin) and its job
    /// leaves the work queue.
    pub async fn on_max_deliveries(&self, advisory: &[u8]) -> anyhow::Result<()> {
        let a: serde_json::Value = serde_json::from_slice(advisory)?;
        let seq = a["stream_seq"]
            .as_u64()
            .ok_or_else(|| anyhow::anyhow!("advisory without stream_seq"))?;
        let deliveries = a["deliveries"].as_u64().unwrap_or(0);
        let stream = self
            .dispatcher
            .js
            .get_stream(events::topology::TASKS_STREAM)
            .await?;
        let msg = match stream.get_raw_message(seq).await {
            Ok(m) => m,
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if let Ok(job) = serde_json::from_slice::<events::task::Job>(&msg.payload) {
            let reason = format!("the analysis did not finish after {deliveries} deliveries");
            let cmd = VoiceTaskCommand::Fail {
                by: None,
                reason,
                retryable: true,
            };
            match execute(&self.tasks, &job.task_id.to_string(), cmd, &ctx()).await {
                Ok(_) => {
                    metrics::counter!("voice_tasks_dead_lettered_total").increment(1);
                    tracing::warn!(task = %job.task_id, deliveries, "task failed after its last delivery");
                }
                // Completed or failed meanwhile: nothing to do.
                Err(CommandError::Domain(_)) => {}
                Err(e) => anyhow::bail!("failing task {}: {e}", job.task_id),
            }
        }
        stream.delete_message(seq).await?;
        Ok(())
    }

    /// One reconciliation pass; returns (re-dispatched, failed).
    pub async fn reconcile(&self) -> anyhow::Result<(usize, usize)> {
        let mut lock = self.pool.begin().await?;
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(RECONCILE_LOCK)
            .fetch_one(&mut *lock)
            .await?;
        if !locked {
            return Ok((0, 0));
        }
        let stale: Vec<(Uuid, String, bool)> = sqlx::query_as(
            "SELECT task_id, status, coalesce(started_at < now() - make_interval(secs => $2), false) AS dead FROM voice_tasks t
              WHERE (status = 'queued' AND queued_at < now() - make_interval(secs => $1))
                 OR (status = 'processing' AND started_at < now() - make_interval(secs => $1))
                 OR (status = 'completed' AND reanalysis_batch IS NOT NULL AND EXISTS (
                        SELECT 1 FROM reanalysis_batches b WHERE b.batch_id = t.reanalysis_batch
                           AND b.requested_at < now() - make_interval(secs => $1)))",
        )
        .bind(self.grace.as_secs_f64())
        .bind(self.processing_limit.as_secs_f64())
        .fetch_all(&mut *lock)
        .await?;
        let stream = self
            .dispatcher
            .js
            .get_stream(events::topology::TASKS_STREAM)
            .await?;
        // The workers' consumer, created again if an operator deleted it (workers cannot).
        stream
            .get_or_create_consumer(
                events::topology::WORKERS_CONSUMER,
                events::topology::workers_consumer(),
            )
            .await
            .map(|_: async_nats::jetstream::consumer::PullConsumer| ())?;
        let (mut redispatched, mut failed) = (0, 0);
        for (id, status, dead) in stale {
            if status == "processing" && dead {
                let cmd = VoiceTaskCommand::Fail {
                    by: None,
                    reason: "the analysis timed out".into(),
                    retryable: true,
                };
                if execute(&self.tasks, &id.to_string(), cmd, &ctx())
                    .await
                    .is_ok()
                {
                    failed += 1;
                }
                continue;
            }
            let present = match stream
                .get_last_raw_message_by_subject(&events::task::job_subject(id))
                .await
            {
                Ok(_) => true,
                Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => false,
                Err(e) => return Err(e.into()),
            };
            if !present {
                let msg_id = format!("{id}:reconciled:{}", chrono::Utc::now().timestamp());
                // Waiting or running, or a re-analysis still asked for.
                let unfinished = |t: &write::domain::voice_task::VoiceTask| {
                    matches!(t.status(), TaskStatus::Queued | TaskStatus::Processing)
                        || (t.status() == TaskStatus::Completed && t.reanalysis().is_some())
                };
                let sent = self
                    .dispatcher
                    .dispatch_when(id, msg_id, unfinished)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if !sent {
                    continue;
                }
                metrics::counter!("voice_jobs_redispatched_total").increment(1);
                tracing::warn!(task = %id, status, "job missing from TASKS; dispatched again");
                redispatched += 1;
            }
        }
        lock.commit().await?;
        Ok((redispatched, failed))
    }

    /// Listens for advisories and reconciles every 15 s until `shutdown`.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let subject = format!(
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{}.{}",
            events::topology::TASKS_STREAM,
            events::topology::WORKERS_CONSUMER
        );
        let client = self.dispatcher.js.client();
        common::shutdown::supervise("voice-task care", shutdown, || async {
            let mut advisories = client.subscribe(subject.clone()).await?;
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tokio::select! {
                    msg = advisories.next() => {
                        let Some(msg) = msg else {
                            anyhow::bail!("the advisory subscription ended");
                        };
                        if let Err(e) = self.on_max_deliveries(&msg.payload).await {
                            tracing::warn!(error = %e, "max-deliveries advisory not handled; reconciliation will catch it");
                        }
                    }
                    _ = tick.tick() => {
                        if let Err(e) = self.reconcile().await {
                            tracing::warn!(error = %e, "reconciliation failed");
                        }
                    }
                }
            }
        })
        .await
    }
}
