//! `projector rebuild`: drop every read model and rebuild it from `EVENTS`.
//!
//! One transaction: readers keep seeing the old content until the new one commits, and the
//! running projector waits on the advisory lock, then skips what the rebuild already applied.

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use futures::StreamExt;
use sqlx::PgPool;

use crate::apply::{apply_event, ApplyError, Effects, PROJECTOR_LOCK, READ_MODEL_TABLES};
use crate::consumer::save_checkpoint;
use events::topology::EVENTS_STREAM;

/// Rebuilds and returns the number of events applied.
pub async fn rebuild(pool: &PgPool, js: &jetstream::Context) -> anyhow::Result<u64> {
    let mut stream = js.get_stream(EVENTS_STREAM).await?;
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PROJECTOR_LOCK)
        .execute(&mut *tx)
        .await?;
    // Read under the lock: the live projector cannot commit past this point meanwhile, so the
    // checkpoint written below never moves backwards.
    let last = stream.info().await?.state.last_sequence;
    for table in READ_MODEL_TABLES {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *tx)
            .await?;
    }
    let mut fx = Effects::default();
    let mut applied = 0u64;
    if last > 0 {
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await?;
        let mut messages = consumer.messages().await?;
        while let Some(msg) = messages.next().await {
            let msg = msg?;
            let seq = msg.info().map_err(|e| anyhow::anyhow!(e))?.stream_sequence;
            match apply_event(&mut tx, &msg.payload, &mut fx).await {
                Ok(()) => applied += 1,
                Err(ApplyError::Poison(reason)) => {
                    tracing::error!(seq, %reason, "skipping poison event")
                }
                Err(ApplyError::Db(e)) => return Err(e.into()),
            }
            if seq >= last {
                break;
            }
        }
    }
    save_checkpoint(&mut tx, last).await?;
    fx.perform(js).await?;
    tx.commit().await?;
    tracing::info!(applied, last, "read models rebuilt");
    Ok(applied)
}
