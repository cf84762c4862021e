//! An in-memory set mirrored from a JetStream KV bucket.
//!
//! Every api instance keeps one per bucket (`admin-revoked`, later `ip-bans`): a look-up is a
//! hash-set probe, and a key written through any instance (or the projector) reaches every
//! instance's set through the bucket's watch, typically within milliseconds.

use std::collections::HashSet;
use std::hash::Hash;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_nats::jetstream::{self, kv::Operation};
use futures::StreamExt;

pub struct KvSet<K> {
    bucket: &'static str,
    keys: RwLock<HashSet<K>>,
    /// True once the watch has delivered the bucket's current content.
    synced: AtomicBool,
}

impl<K> KvSet<K>
where
    K: FromStr + Hash + Eq + Send + Sync + 'static,
{
    pub fn new(bucket: &'static str) -> Arc<Self> {
        Arc::new(KvSet {
            bucket,
            keys: RwLock::new(HashSet::new()),
            synced: AtomicBool::new(false),
        })
    }

    pub fn contains(&self, key: &K) -> bool {
        self.keys.read().expect("kv set lock").contains(key)
    }

    pub fn insert(&self, key: K) {
        self.keys.write().expect("kv set lock").insert(key);
    }

    pub fn remove(&self, key: &K) {
        self.keys.write().expect("kv set lock").remove(key);
    }

    pub fn len(&self) -> usize {
        self.keys.read().expect("kv set lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// Mirrors the bucket until `shutdown`, re-watching after any error or disconnect.
    pub async fn run(
        self: Arc<Self>,
        js: jetstream::Context,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut delay = Duration::from_millis(200);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                result = self.watch_once(&js) => {
                    if let Err(e) = result {
                        tracing::warn!(bucket = self.bucket, error = %e, "kv watch failed; retrying");
                    }
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(5));
        }
    }

    async fn watch_once(&self, js: &jetstream::Context) -> anyhow::Result<()> {
        let kv = js.get_key_value(self.bucket).await?;
        let mut watch = kv.watch_with_history(">").await?;
        let mut fresh = HashSet::new();
        let mut loading = kv.status().await?.values() > 0;
        if !loading {
            self.replace(fresh);
            fresh = HashSet::new();
        }
        while let Some(entry) = watch.next().await {
            let entry = entry?;
            let Ok(key) = entry.key.parse::<K>() else {
                tracing::warn!(
                    bucket = self.bucket,
                    key = entry.key,
                    "ignoring unparseable key"
                );
                continue;
            };
            if loading {
                match entry.operation {
                    Operation::Put => fresh.insert(key),
                    Operation::Delete | Operation::Purge => fresh.remove(&key),
                };
                if entry.delta == 0 || entry.seen_current {
                    self.replace(std::mem::take(&mut fresh));
                    loading = false;
                }
            } else {
                match entry.operation {
                    Operation::Put => self.insert(key),
                    Operation::Delete | Operation::Purge => self.remove(&key),
                }
            }
        }
        anyhow::bail!("watch ended")
    }

    fn replace(&self, keys: HashSet<K>) {
        *self.keys.write().expect("kv set lock") = keys;
        if !self.synced.swap(true, Ordering::Relaxed) {
            tracing::info!(bucket = self.bucket, "kv mirror synced");
        }
    }
}
