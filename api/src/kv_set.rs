//! An in-memory set mirrored from a JetStream KV bucket.
//!
//! Every api instance keeps one per bucket (`admin-revoked`, later `ip-bans`): a look-up is a
//! hash-set probe, and a key written through any instance (or the projector) reaches every
//! instance's set through the bucket's watch, typically within milliseconds.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use async_nats::jetstream::{self, kv::Operation};
use futures::StreamExt;

pub struct KvSet<K> {
    bucket: &'static str,
    keys: RwLock<Keys<K>>,
    /// The group of a key (e.g. an IPv6 address's /64), when look-ups are by group.
    group: Option<Grouping<K>>,
    /// True once the watch has delivered the bucket's current content.
    synced: AtomicBool,
}

type Grouping<K> = Box<dyn Fn(&K) -> K + Send + Sync>;

/// The keys, and how many keys each group holds (only with a grouping).
struct Keys<K> {
    exact: HashSet<K>,
    groups: HashMap<K, u32>,
}

impl<K: Hash + Eq> Default for Keys<K> {
    fn default() -> Self {
        Keys {
            exact: HashSet::new(),
            groups: HashMap::new(),
        }
    }
}

impl<K> KvSet<K>
where
    K: FromStr + Hash + Eq + Send + Sync + 'static,
{
    pub fn new(bucket: &'static str) -> Arc<Self> {
        Arc::new(KvSet {
            bucket,
            keys: RwLock::new(Keys::default()),
            group: None,
            synced: AtomicBool::new(false),
        })
    }

    /// A set that also answers "does any key of this group exist" ([`KvSet::contains_group`]).
    pub fn grouped(
        bucket: &'static str,
        group: impl Fn(&K) -> K + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(KvSet {
            bucket,
            keys: RwLock::new(Keys::default()),
            group: Some(Box::new(group)),
            synced: AtomicBool::new(false),
        })
    }

    pub fn contains(&self, key: &K) -> bool {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .exact
            .contains(key)
    }

    /// Whether some key shares `key`'s group (exact look-up without a grouping).
    pub fn contains_group(&self, key: &K) -> bool {
        match &self.group {
            Some(group) => self
                .keys
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .groups
                .contains_key(&group(key)),
            None => self.contains(key),
        }
    }

    pub fn insert(&self, key: K) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let g = self.group.as_ref().map(|group| group(&key));
        if keys.exact.insert(key) {
            if let Some(g) = g {
                *keys.groups.entry(g).or_default() += 1;
            }
        }
    }

    pub fn remove(&self, key: &K) {
        let mut keys = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        if keys.exact.remove(key) {
            if let Some(g) = self.group.as_ref().map(|group| group(key)) {
                if let Some(n) = keys.groups.get_mut(&g) {
                    *n -= 1;
                    if *n == 0 {
                        keys.groups.remove(&g);
                    }
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .exact
            .len()
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
        let what = format!("kv watch of {}", self.bucket);
        common::shutdown::supervise(&what, shutdown, || async {
            self.watch_once(&js).await?;
            Ok(common::shutdown::Next::Again)
        })
        .await
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

    fn replace(&self, exact: HashSet<K>) {
        let mut groups = HashMap::new();
        if let Some(group) = &self.group {
            for key in &exact {
                *groups.entry(group(key)).or_default() += 1;
            }
        }
        *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Keys { exact, groups };
        if !self.synced.swap(true, Ordering::Relaxed) {
            tracing::info!(bucket = self.bucket, "kv mirror synced");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_ip::{network, BannedIp};

    #[test]
    fn a_grouped_set_finds_any_address_of_a_banned_network_until_its_last_key_goes() {
        let set = KvSet::grouped("t", |b: &BannedIp| BannedIp(network(b.0, 64)));
        let ip = |s: &str| BannedIp(s.parse().unwrap());
        set.insert(ip("2001:db8:66::1"));
        set.insert(ip("2001:db8:66::7"));
        set.insert(ip("192.0.2.1"));
        assert!(set.contains_group(&ip("2001:db8:66::2")), "same /64");
        assert!(!set.contains_group(&ip("2001:db8:67::1")), "next /64");
        assert!(!set.contains_group(&ip("192.0.2.2")), "IPv4 by address");
        set.remove(&ip("2001:db8:66::1"));
        assert!(
            set.contains_group(&ip("2001:db8:66::2")),
            "::7 still holds it"
        );
        set.remove(&ip("2001:db8:66::7"));
        set.remove(&ip("2001:db8:66::7"));
        assert!(!set.contains_group(&ip("2001:db8:66::2")));
        set.replace([ip("2001:db8:66::9")].into_iter().collect());
        assert!(set.contains_group(&ip("2001:db8:66::1")));
        assert!(
            !set.contains(&ip("2001:db8:66::1")),
            "exact look-ups stay exact"
        );
    }
}
