//! Heartbeat intake: the admin dashboard's view of which workers are alive and busy.
//!
//! ```text
//!  worker ── workers.heartbeat.<id> (every 5 s) ──► api (queue group) ──► worker_heartbeats
//! ```

use std::future::Future;

use chrono::Utc;
use futures::StreamExt;
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

/// Subject prefix of heartbeats; the last token is the worker id.
pub const HEARTBEAT_SUBJECT: &str = "workers.heartbeat";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Heartbeat {
    pub current_task_id: Option<Uuid>,
    #[serde(default)]
    pub tasks_completed: i64,
    #[serde(default)]
    pub tasks_failed: i64,
    pub version: Option<String>,
}

/// Records one heartbeat; malformed ones are refused.
pub async fn record_heartbeat(pool: &PgPool, subject: &str, payload: &[u8]) -> anyhow::Result<()> {
    let id = subject
        .rsplit('.')
        .next()
        .and_then(|t| Uuid::parse_str(t).ok())
        .ok_or_else(|| anyhow::anyhow!("heartbeat subject without a worker id: {subject}"))?;
    let hb: Heartbeat = serde_json::from_slice(payload)?;
    let version = hb.version.map(|v| v.chars().take(64).collect::<String>());
    sqlx::query(
        "INSERT INTO worker_heartbeats (worker_id, last_seen_at, current_task_id, tasks_completed, tasks_failed, version)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (worker_id) DO UPDATE SET last_seen_at = EXCLUDED.last_seen_at,
             current_task_id = EXCLUDED.current_task_id, tasks_completed = EXCLUDED.tasks_completed,
             tasks_failed = EXCLUDED.tasks_failed, version = EXCLUDED.version",
    )
    .bind(id)
    .bind(Utc::now())
    .bind(hb.current_task_id)
    .bind(hb.tasks_completed.max(0))
    .bind(hb.tasks_failed.max(0))
    .bind(version)
    .execute(pool)
    .await?;
    Ok(())
}

/// Consumes heartbeats until `shutdown` (one api instance of the queue group gets each).
pub async fn run(pool: PgPool, nats: async_nats::Client, shutdown: impl Future<Output = ()>) {
    common::shutdown::supervise("heartbeats", shutdown, || async {
        let mut sub = nats
            .queue_subscribe(format!("{HEARTBEAT_SUBJECT}.*"), "api".to_string())
            .await?;
        while let Some(msg) = sub.next().await {
            if let Err(e) = record_heartbeat(&pool, &msg.subject, &msg.payload).await {
                tracing::warn!(error = %e, subject = %msg.subject, "heartbeat refused");
            }
        }
        anyhow::bail!("the heartbeat subscription ended")
    })
    .await
}
