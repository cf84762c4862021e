//! The projector's consumer loop.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{self, consumer::PullConsumer, Message};
use futures::{FutureExt, StreamExt};
use sqlx::PgPool;

use crate::apply::{apply_event, ApplyError, Effects, PROJECTION, PROJECTOR_LOCK};
use events::topology::{EVENTS_STREAM, PROJECTOR_CONSUMER};

pub struct Projector {
    pool: PgPool,
    js: jetstream::Context,
    batch_size: usize,
}

/// What one batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub applied: usize,
    pub skipped: usize,
    pub poison: usize,
    pub checkpoint: u64,
}

impl Projector {
    pub fn new(pool: PgPool, js: jetstream::Context) -> Self {
        Projector {
            pool,
            js,
            batch_size: 500,
        }
    }

    /// Consumes until `shutdown`, retrying after errors. A batch cut off by shutdown rolls back
    /// and is redelivered: nothing is lost or applied twice.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        common::shutdown::supervise("projector", shutdown, || async {
            self.consume().await?;
            Ok(common::shutdown::Next::Again)
        })
        .await
    }

    /// Pulls continuously; each batch is what has already arrived (up to `batch_size`), so an
    /// event is applied as soon as it lands and bursts are applied in one transaction.
    ///
    /// Dropped mid-batch (shutdown), the transaction rolls back and the messages are redelivered.
    async fn consume(&self) -> anyhow::Result<()> {
        let stream = self.js.get_stream(EVENTS_STREAM).await?;
        let consumer: PullConsumer = stream
            .get_or_create_consumer(PROJECTOR_CONSUMER, events::topology::projector_consumer())
            .await?;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(self.batch_size)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await?;
        while let Some(first) = messages.next().await {
            let mut batch = vec![first?];
            while batch.len() < self.batch_size {
                match messages.next().now_or_never() {
                    Some(Some(Ok(m))) => batch.push(m),
                    Some(Some(Err(e))) => return Err(e.into()),
                    _ => break,
                }
            }
            self.process_batch(batch).await?;
        }
        anyhow::bail!("the consumer's message stream ended")
    }

    /// Applies a batch in one transaction, then acks it.
    pub async fn process_batch(&self, msgs: Vec<Message>) -> anyhow::Result<BatchOutcome> {
        let mut stream = None;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PROJECTOR_LOCK)
            .execute(&mut *tx)
            .await?;
        let mut checkpoint = load_checkpoint(&mut tx).await?;
        let mut out = BatchOutcome::default();
        let mut fx = Effects::default();
        let mut pending = 0;
        for msg in &msgs {
            let info = msg
                .info()
                .map_err(|e| anyhow::anyhow!("message without metadata: {e}"))?;
            let seq = info.stream_sequence;
            pending = info.pending;
            if seq <= checkpoint {
                out.skipped += 1;
                continue;
            }
            // A redelivery can overtake earlier messages; apply what lies between first, so
            // events always apply in stream order and the checkpoint never jumps a message.
            if seq > checkpoint + 1 && stream.is_none() {
                stream = Some(self.js.get_stream(EVENTS_STREAM).await?);
            }
            for missing in checkpoint + 1..seq {
                let Some(stream) = &stream else { break };
                match stream.get_raw_message(missing).await {
                    Ok(m) => apply_counted(&mut tx, &m.payload, &mut fx, &mut out).await?,
                    // Only a message that is not there is a gap; any other failure retries the
                    // whole batch rather than skip an event for good.
                    Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => {
                        tracing::debug!(seq = missing, "gap in the stream")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            apply_counted(&mut tx, &msg.payload, &mut fx, &mut out).await?;
            checkpoint = seq;
        }
        save_checkpoint(&mut tx, checkpoint).await?;
        fx.perform(&self.js).await?;
        tx.commit().await?;
        for msg in &msgs {
            if let Err(e) = msg.ack().await {
                // The next delivery is skipped by the checkpoint.
                tracing::debug!(error = %e, "ack failed");
            }
        }
        out.checkpoint = checkpoint;
        metrics::gauge!("projector_checkpoint").set(checkpoint as f64);
        metrics::gauge!("projector_pending").set(pending as f64);
        Ok(out)
    }
}

async fn apply_counted(
    tx: &mut sqlx::PgConnection,
    raw: &[u8],
    fx: &mut Effects,
    out: &mut BatchOutcome,
) -> anyhow::Result<()> {
    match apply_event(tx, raw, fx).await {
        Ok(()) => {
            out.applied += 1;
            metrics::counter!("projector_events_applied_total").increment(1);
        }
        Err(ApplyError::Poison(reason)) => {
            tracing::error!(%reason, "skipping an event the projector cannot read");
            metrics::counter!("projector_poison_total").increment(1);
            out.poison += 1;
        }
        Err(ApplyError::Db(e)) => return Err(e.into()),
    }
    Ok(())
}

pub async fn load_checkpoint(tx: &mut sqlx::PgConnection) -> Result<u64, sqlx::Error> {
    let seq: Option<i64> =
        sqlx::query_scalar("SELECT stream_seq FROM projector_checkpoints WHERE projection = $1")
            .bind(PROJECTION)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(seq.unwrap_or(0) as u64)
}

pub async fn save_checkpoint(tx: &mut sqlx::PgConnection, seq: u64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO projector_checkpoints (projection, stream_seq, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (projection) DO UPDATE SET stream_seq = EXCLUDED.stream_seq, updated_at = now()",
    )
    .bind(PROJECTION)
    .bind(seq as i64)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
