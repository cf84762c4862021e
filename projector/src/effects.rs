//! What applying an event produces besides rows: side effects outside Postgres, and why an
//! event was not applied. Shared by the dispatch (`apply`) and the read models (`readmodels`),
//! which depend on this module and not on each other.

use async_nats::jetstream;
use bytes::Bytes;

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
