//! The janitor: background care for the event backbone.
//!
//! ```text
//!  tasks      dead letters and reconciliation of voice tasks (see [`tasks`])
//!  every 5 s  outbox watchdog: depth and oldest age of unpublished events → metrics, a warning
//!             when the relay has stalled (invariant 1 needs a live relay to hold end to end)
//!  retention  recordings deleted RECORDING_RETENTION_DAYS after their task ended (see
//!             [`retention`])
//!  on demand  `janitor republish`: re-populate JetStream EVENTS from Postgres (invariant 6),
//!             e.g. after a stream was lost; refuses while EVENTS still holds messages
//! ```

pub mod retention;
pub mod tasks;

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream;
use sqlx::PgPool;

/// Above this age the watchdog warns that the relay is not publishing.
pub const STALL_WARNING: Duration = Duration::from_secs(60);

#[derive(Debug, PartialEq)]
pub struct OutboxHealth {
    pub depth: i64,
    pub oldest_age_seconds: f64,
}

/// One watchdog pass.
pub async fn check_outbox(pool: &PgPool) -> Result<OutboxHealth, sqlx::Error> {
    let (depth, age): (i64, Option<f64>) = sqlx::query_as(
        "SELECT count(*), EXTRACT(EPOCH FROM clock_timestamp() - min(enqueued_at))::float8 FROM outbox",
    )
    .fetch_one(pool)
    .await?;
    let health = OutboxHealth {
        depth,
        oldest_age_seconds: age.unwrap_or(0.0),
    };
    metrics::gauge!("outbox_depth").set(health.depth as f64);
    metrics::gauge!("outbox_oldest_age_seconds").set(health.oldest_age_seconds);
    if health.oldest_age_seconds > STALL_WARNING.as_secs_f64() {
        tracing::warn!(
            depth,
            oldest_age_seconds = health.oldest_age_seconds,
            "outbox is not draining: is the relay running and NATS reachable?"
        );
    }
    Ok(health)
}

/// Runs the watchdog until `shutdown`.
pub async fn run(pool: PgPool, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {
                if let Err(e) = check_outbox(&pool).await {
                    tracing::warn!(error = %e, "outbox check failed");
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RepublishError {
    #[error("EVENTS still holds {0} messages; re-publishing is for an empty or lost stream (use --force to send anyway: only messages inside the de-duplication window are dropped as repeats)")]
    StreamNotEmpty(u64),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// Queues every stored event for the relay again, in per-aggregate order. Returns how many.
pub async fn republish(
    pool: &PgPool,
    js: &jetstream::Context,
    force: bool,
) -> Result<u64, RepublishError> {
    let messages = js
        .get_stream(events::topology::EVENTS_STREAM)
        .await
        .map_err(anyhow::Error::from)?
        .info()
        .await
        .map_err(anyhow::Error::from)?
        .state
        .messages;
    if messages > 0 && !force {
        return Err(RepublishError::StreamNotEmpty(messages));
    }
    let queued = sqlx::query(
        "INSERT INTO outbox (aggregate_type, aggregate_id, sequence)
         SELECT aggregate_type, aggregate_id, sequence FROM events
          ORDER BY recorded_at, aggregate_type, aggregate_id, sequence",
    )
    .execute(pool)
    .await
    .map_err(anyhow::Error::from)?
    .rows_affected();
    sqlx::query("SELECT pg_notify('outbox', '')")
        .execute(pool)
        .await
        .map_err(anyhow::Error::from)?;
    Ok(queued)
}
