//! Applying one envelope to the read models.

use async_nats::jetstream;
use bytes::Bytes;
use events::Envelope;
use sqlx::PgConnection;

use crate::readmodels;

/// Checkpoint name of the read models (they move together, in one transaction).
pub const PROJECTION: &str = "read_models";

/// Advisory lock serialising batches and rebuilds ("blproj").
pub const PROJECTOR_LOCK: i64 = 0x626c_7072_6f6a;

/// Side effects outside Postgres, performed before the commit. Each is idempotent, so a retry
/// after a crash between them and the commit repeats them harmlessly. They keep their order
/// (ban, unban, ban again must end banned).
#[derive(Default, Debug)]
pub struct Effects {
    pub kv: Vec<KvOp>,
}

#[derive(Debug)]
pub enum KvOp {
    Put {
        bucket: &'static str,
        key: String,
        value: Bytes,
    },
    Delete {
        bucket: &'static str,
        key: String,
    },
}

impl Effects {
    pub fn put(&mut self, bucket: &'static str, key: String, value: impl Into<Bytes>) {
        self.kv.push(KvOp::Put {
            bucket,
            key,
            value: value.into(),
        });
    }

    pub fn delete(&mut self, bucket: &'static str, key: String) {
        self.kv.push(KvOp::Delete { bucket, key });
    }

    /// KV writes are JetStream publishes on `$KV.<bucket>.<key>` (a delete carries the
    /// `KV-Operation: DEL` header): sent in order, pipelined, acknowledged together.
    pub async fn perform(self, js: &jetstream::Context) -> anyhow::Result<()> {
        let mut acks = Vec::with_capacity(self.kv.len());
        for op in self.kv {
            let ack = match op {
                KvOp::Put { bucket, key, value } => {
                    js.publish(format!("$KV.{bucket}.{key}"), value).await?
                }
                KvOp::Delete { bucket, key } => {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("KV-Operation", "DEL");
                    js.publish_with_headers(format!("$KV.{bucket}.{key}"), headers, Bytes::new())
                        .await?
                }
            };
            acks.push(ack);
        }
        for ack in acks {
            ack.await?;
        }
        Ok(())
    }
}

/// Why an event was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The message is not an event we can read: skipped (and counted), never retried.
    #[error("poison event: {0}")]
    Poison(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Applies one event from its raw message bytes. Unknown aggregate types are skipped (a newer
/// producer may already write them); undecodable ones are poison.
pub async fn apply_event(
    tx: &mut PgConnection,
    raw: &[u8],
    fx: &mut Effects,
) -> Result<(), ApplyError> {
    let env = Envelope::from_bytes(raw).map_err(|e| ApplyError::Poison(e.to_string()))?;
    let applied = match env.aggregate_type.as_str() {
        events::admin::AGGREGATE_TYPE => readmodels::admin::apply(tx, &env).await,
        events::admin::SESSION_AGGREGATE_TYPE => {
            readmodels::admin::apply_session(tx, &env, fx).await
        }
        events::platform_user::AGGREGATE_TYPE => {
            readmodels::platform_user::apply(tx, &env, fx).await
        }
        events::phone_number::AGGREGATE_TYPE => readmodels::phone_number::apply(tx, &env, fx).await,
        events::worker::AGGREGATE_TYPE => readmodels::worker::apply(tx, &env).await,
        events::voice_task::AGGREGATE_TYPE => readmodels::voice_task::apply(tx, &env).await,
        other => {
            tracing::debug!(aggregate_type = other, "no read model for this aggregate");
            return Ok(());
        }
    };
    let lag = (chrono::Utc::now() - env.occurred_at)
        .num_milliseconds()
        .max(0) as f64
        / 1000.0;
    metrics::histogram!("projection_lag_seconds").record(lag);
    applied
}

/// Every read-model table, emptied by a rebuild.
pub const READ_MODEL_TABLES: &[&str] = readmodels::TABLES;
