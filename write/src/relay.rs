//! The outbox relay: Postgres `outbox` → JetStream `EVENTS`.
//!
//! ```text
//!  events INSERT ──trigger──► outbox row + NOTIFY 'outbox'   (same transaction as the event)
//!                                   │
//!  relay (one active: advisory lock) ── SELECT … ORDER BY id LIMIT n
//!        ── pipelined publish, Nats-Msg-Id = <type>:<id>:<seq> ── await acks in order
//!        ── DELETE the acknowledged prefix
//! ```
//!
//! Guarantees (DESIGN.md invariant 1): an event is deleted from the outbox only after JetStream
//! acknowledged it, so a crash at any point re-sends, and the stream's de-duplication window
//! drops the repeat. Rows are published in outbox-id order; two events of one aggregate are
//! inserted in commit order (the second command loads the first's events), so per-aggregate
//! order holds on the stream. A failed publish stops the batch at that row: nothing after it is
//! deleted, and it is re-sent first.

use std::future::Future;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use chrono::{DateTime, Utc};
use events::Envelope;
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgPool, Row};

/// Advisory-lock key held by the active relay ("blrelay").
pub const RELAY_LOCK: i64 = 0x0062_6c72_656c_6179;

pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    batch_size: i64,
}

/// What one [`Relay::step`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct StepOutcome {
    pub published: usize,
    /// True when the batch was cut short by a publish failure.
    pub stalled: bool,
}

impl Relay {
    pub fn new(pool: PgPool, js: jetstream::Context) -> Self {
        Relay {
            pool,
            js,
            batch_size: 500,
        }
    }

    pub fn with_batch_size(mut self, n: i64) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Relays until `shutdown`. Stands by while another relay holds the lock; takes over when it
    /// goes away. Errors (Postgres or NATS down) are logged and retried with back-off.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        common::shutdown::supervise("relay", shutdown, || async {
            self.lead().await?;
            Ok(common::shutdown::Next::Again)
        })
        .await
    }

    /// Takes the lock and relays until an error. Returns `Ok` when another relay is active.
    async fn lead(&self) -> anyhow::Result<()> {
        // A dedicated connection: the session-level lock lives and dies with it, and it never
        // goes back to the pool still holding the lock.
        let mut conn = self.pool.acquire().await?.detach();
        let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(RELAY_LOCK)
            .fetch_one(&mut conn)
            .await?;
        if !locked {
            metrics::gauge!("relay_active").set(0.0);
            tokio::time::sleep(Duration::from_secs(2)).await;
            return Ok(());
        }
        metrics::gauge!("relay_active").set(1.0);
        tracing::info!("relay active");
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen("outbox").await?;
        loop {
            let outcome = self.step(&mut conn).await?;
            if outcome.stalled {
                tokio::time::sleep(Duration::from_millis(500)).await;
            } else if outcome.published < self.batch_size as usize {
                // Caught up: sleep until a commit notifies us (or a second, as a safety net).
                if let Ok(Err(e)) =
                    tokio::time::timeout(Duration::from_secs(1), listener.recv()).await
                {
                    return Err(e.into());
                }
            }
        }
    }

    /// Publishes the next batch and deletes what JetStream acknowledged.
    pub async fn step(&self, conn: &mut PgConnection) -> anyhow::Result<StepOutcome> {
        let started = Instant::now();
        let rows = sqlx::query(
            "SELECT o.id, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type,
                    e.event_version, e.payload, e.metadata, e.recorded_at
               FROM outbox o
               JOIN events e ON e.aggregate_type = o.aggregate_type
                            AND e.aggregate_id = o.aggregate_id
                            AND e.sequence = o.sequence
              ORDER BY o.id
              LIMIT $1",
        )
        .bind(self.batch_size)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            return Ok(StepOutcome {
                published: 0,
                stalled: false,
            });
        }

        let mut pending = Vec::with_capacity(rows.len());
        let mut send_failed = false;
        for row in &rows {
            let id: i64 = row.get("id");
            let sequence: i64 = row.get("sequence");
            let recorded_at: DateTime<Utc> = row.get("recorded_at");
            let envelope = Envelope::from_stored(
                row.get("aggregate_type"),
                row.get("aggregate_id"),
                sequence as u64,
                recorded_at,
                row.get("event_type"),
                row.get("event_version"),
                row.get("payload"),
                &row.get::<serde_json::Value, _>("metadata"),
            );
            let publish = PublishMessage::build()
                .payload(envelope.to_bytes().into())
                .message_id(envelope.msg_id());
            match self.js.send_publish(envelope.subject(), publish).await {
                Ok(ack) => pending.push((id, recorded_at, ack)),
                Err(e) => {
                    tracing::warn!(error = %e, msg_id = envelope.msg_id(), "publish failed");
                    send_failed = true;
                    break;
                }
            }
        }

        let mut acked = Vec::with_capacity(pending.len());
        let mut stalled = send_failed;
        let now = Utc::now();
        for (id, recorded_at, ack) in pending {
            match ack.await {
                Ok(_) => {
                    acked.push(id);
                    let lag = (now - recorded_at).num_milliseconds().max(0) as f64 / 1000.0;
                    metrics::histogram!("relay_lag_seconds").record(lag);
                }
                Err(e) => {
                    tracing::warn!(error = %e, outbox_id = id, "publish not acknowledged");
                    stalled = true;
                    break;
                }
            }
        }
        if !acked.is_empty() {
            sqlx::query("DELETE FROM outbox WHERE id = ANY($1)")
                .bind(&acked)
                .execute(&mut *conn)
                .await?;
        }
        metrics::counter!("relay_published_total").increment(acked.len() as u64);
        metrics::histogram!("relay_batch_seconds").record(started.elapsed().as_secs_f64());
        Ok(StepOutcome {
            published: acked.len(),
            stalled,
        })
    }

    /// Publishes until the outbox is empty (tests and benchmarks, with no relay running).
    pub async fn drain(&self) -> anyhow::Result<usize> {
        let mut conn = self.pool.acquire().await?;
        let mut total = 0;
        loop {
            let outcome = self.step(&mut conn).await?;
            total += outcome.published;
            if outcome.stalled {
                anyhow::bail!("publishing stalled after {total} events");
            }
            if outcome.published == 0 {
                return Ok(total);
            }
        }
    }
}
