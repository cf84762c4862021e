//! Workers over NATS: heartbeat intake and disconnecting revoked workers.
//!
//! ```text
//!  worker ── workers.heartbeat.<id> (every 5 s) ──► api (queue group) ──► worker_heartbeats
//!  DELETE /admin/workers/{id} ── WorkerRevoked ──► kick every recorded connection
//!                                                   ($SYS.REQ.SERVER.<server>.KICK)
//! ```

use std::future::Future;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::app::AppState;

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
pub async fn run_heartbeats(
    pool: PgPool,
    nats: async_nats::Client,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let sub = nats
            .queue_subscribe(format!("{HEARTBEAT_SUBJECT}.*"), "api".to_string())
            .await;
        match sub {
            Ok(mut sub) => loop {
                tokio::select! {
                    _ = &mut shutdown => return,
                    msg = sub.next() => match msg {
                        Some(msg) => {
                            if let Err(e) = record_heartbeat(&pool, &msg.subject, &msg.payload).await {
                                tracing::warn!(error = %e, subject = %msg.subject, "heartbeat refused");
                            }
                        }
                        None => break,
                    }
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to heartbeats"),
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Disconnects every recorded connection of `worker` (best effort: the auth callout refuses
/// its reconnects anyway, and credentials expire as a backstop).
pub async fn disconnect(s: &AppState, worker: Uuid) {
    let rows: Vec<(String, i64)> = match sqlx::query_as(
        "DELETE FROM worker_connections WHERE worker_id = $1 RETURNING server_id, client_id",
    )
    .bind(worker)
    .fetch_all(&s.pool)
    .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, %worker, "cannot read the worker's connections");
            return;
        }
    };
    for (server, cid) in rows {
        if let Err(e) = crate::callout::kick(s, &server, cid).await {
            tracing::warn!(error = %e, %worker, server, cid, "kick failed");
        }
    }
}
