//! Ban-evasion attempts: requests refused because they came from a banned IP.
//!
//! Counted in memory on the hot path (an atomic add), exported on `/metrics`, and flushed every
//! few seconds into `api_counters` (one row per api instance), so `/report/stats` can show the
//! total across instances. Operational figures, not domain events: a flood of refused requests
//! must not flood the event log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

pub const NAME: &str = "ban_evasion_attempts";

pub struct EvasionCounter {
    instance: Uuid,
    count: AtomicU64,
}

impl Default for EvasionCounter {
    fn default() -> Self {
        EvasionCounter {
            instance: Uuid::new_v4(),
            count: AtomicU64::new(0),
        }
    }
}

impl EvasionCounter {
    pub fn record(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("ban_evasion_attempts_total").increment(1);
    }

    pub async fn flush(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let value = self.count.load(Ordering::Relaxed) as i64;
        if value == 0 {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO api_counters (instance_id, name, value, updated_at) VALUES ($1, $2, $3, now())
             ON CONFLICT (instance_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        )
        .bind(self.instance)
        .bind(NAME)
        .bind(value)
        .execute(pool)
        .await?;
        Ok(())
    }

    /// This instance's count flushed, then the sum over every instance.
    pub async fn total(&self, pool: &PgPool) -> Result<i64, sqlx::Error> {
        self.flush(pool).await?;
        sqlx::query_scalar(
            "SELECT coalesce(sum(value), 0)::bigint FROM api_counters WHERE name = $1",
        )
        .bind(NAME)
        .fetch_one(pool)
        .await
    }

    /// Flushes every 10 s until `shutdown`, and once more at the end.
    pub async fn run(
        self: std::sync::Arc<Self>,
        pool: PgPool,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.flush(&pool).await {
                tracing::debug!(error = %e, "evasion counter not flushed");
            }
        }
        let _ = self.flush(&pool).await;
    }
}
