//! Cutting off a revoked worker at once.
//!
//! ```text
//!  DELETE /admin/workers/{id} ── WorkerRevoked ──► kick every recorded connection
//!                                                   ($SYS.REQ.SERVER.<server>.KICK)
//! ```
//!
//! Best effort: the auth callout refuses the worker's reconnects anyway, and its credential
//! expires as a backstop (`WORKER_CREDENTIAL_TTL_SECONDS`).

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// What disconnecting needs: the recorded connections and a system-account connection.
#[derive(Clone)]
pub struct Revocation {
    pub pool: PgPool,
    /// A system-account connection (`NATS_SYS_USER`); without it revoked workers are cut off
    /// when their credential expires.
    pub nats_sys: Option<async_nats::Client>,
}

impl Revocation {
    /// Disconnects every recorded connection of `worker`.
    pub async fn disconnect(&self, worker: Uuid) {
        let rows: Vec<(String, i64)> = match sqlx::query_as(
            "DELETE FROM worker_connections WHERE worker_id = $1 RETURNING server_id, client_id",
        )
        .bind(worker)
        .fetch_all(&self.pool)
        .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, %worker, "cannot read the worker's connections");
                return;
            }
        };
        for (server, cid) in rows {
            if let Err(e) = self.kick(&server, cid).await {
                tracing::warn!(error = %e, %worker, server, cid, "kick failed");
            }
        }
    }

    /// Disconnects client `cid` on server `server_id` (system account).
    async fn kick(&self, server_id: &str, cid: i64) -> anyhow::Result<()> {
        let sys = self
            .nats_sys
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no NATS_SYS_USER configured"))?;
        let subject = format!("$SYS.REQ.SERVER.{server_id}.KICK");
        let resp = tokio::time::timeout(
            Duration::from_secs(3),
            sys.request(subject, json!({"cid": cid}).to_string().into()),
        )
        .await??;
        tracing::info!(server_id, cid, answer = %String::from_utf8_lossy(&resp.payload), "kicked");
        Ok(())
    }
}
