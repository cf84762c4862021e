//! JetStream streams, consumers and KV buckets.
//!
//! Stream and consumer definitions are JSON files in `nats/jetstream/` (the NATS API's own
//! format, so `nats stream add --config` takes them too); they are compiled in here and applied
//! idempotently by `api setup` and on start. Replicas come from `JETSTREAM_REPLICAS`.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};

/// Inbox prefix of the read-only `replay` user (its permissions cover only this prefix).
pub const REPLAY_INBOX_PREFIX: &str = "_INBOX_replay";

/// The event history.
pub const EVENTS_STREAM: &str = "EVENTS";
/// Durable consumer of the projector.
pub const PROJECTOR_CONSUMER: &str = "projector";
/// KV bucket: revoked admin token ids → their expiry. Watched by every api instance.
pub const ADMIN_REVOKED_BUCKET: &str = "admin-revoked";

/// KV bucket: banned IPs (key: the IP, `:` written as `_`). Watched by every api instance.
pub const IP_BANS_BUCKET: &str = "ip-bans";

/// KV bucket: phone number (E.164 digits) → its standing, for workers and look-ups.
pub const PHONE_REPUTATION_BUCKET: &str = "phone-reputation";

/// Analysis jobs (work queue) and the durable consumer every worker pulls from.
pub const TASKS_STREAM: &str = "TASKS";
pub const WORKERS_CONSUMER: &str = "workers";
/// Subject prefix of analysis jobs (`tasks.analyze.<taskId>`).
pub const TASK_SUBJECT: &str = "tasks.analyze";
/// The api's durable consumers: jobs to dispatch (EVENTS), results to record (RESULTS).
pub const DISPATCHER_CONSUMER: &str = "dispatcher";
pub const INTAKE_CONSUMER: &str = "intake";
/// The api's verdict emails (EVENTS, completed tasks).
pub const NOTIFIER_CONSUMER: &str = "notifier";
/// Worker results (`results.<workerId>`).
pub const RESULTS_STREAM: &str = "RESULTS";

const TASKS_JSON: &str = include_str!("../../nats/jetstream/TASKS.json");
const WORKERS_JSON: &str = include_str!("../../nats/jetstream/TASKS.workers.json");
const RESULTS_JSON: &str = include_str!("../../nats/jetstream/RESULTS.json");
const DISPATCHER_JSON: &str = include_str!("../../nats/jetstream/EVENTS.dispatcher.json");
const NOTIFIER_JSON: &str = include_str!("../../nats/jetstream/EVENTS.notifier.json");
const INTAKE_JSON: &str = include_str!("../../nats/jetstream/RESULTS.intake.json");
const EVENTS_JSON: &str = include_str!("../../nats/jetstream/EVENTS.json");
const PROJECTOR_JSON: &str = include_str!("../../nats/jetstream/EVENTS.projector.json");

/// The `EVENTS` stream definition with `replicas` applied.
pub fn events_stream(replicas: usize) -> stream::Config {
    stream_def(EVENTS_JSON, replicas)
}

fn stream_def(json: &str, replicas: usize) -> stream::Config {
    let mut cfg: stream::Config =
        serde_json::from_str(json).expect("stream definitions in nats/jetstream are valid");
    cfg.num_replicas = replicas.max(1);
    cfg
}

pub fn tasks_stream(replicas: usize) -> stream::Config {
    stream_def(TASKS_JSON, replicas)
}

pub fn results_stream(replicas: usize) -> stream::Config {
    stream_def(RESULTS_JSON, replicas)
}

/// The durable pull consumer every worker shares.
pub fn workers_consumer() -> consumer::pull::Config {
    serde_json::from_str(WORKERS_JSON).expect("nats/jetstream/TASKS.workers.json is valid")
}

/// The api's dispatcher on `EVENTS` (submitted and requeued tasks only).
pub fn dispatcher_consumer() -> consumer::pull::Config {
    serde_json::from_str(DISPATCHER_JSON).expect("nats/jetstream/EVENTS.dispatcher.json is valid")
}

/// The api's verdict emails.
pub fn notifier_consumer() -> consumer::pull::Config {
    serde_json::from_str(NOTIFIER_JSON).expect("nats/jetstream/EVENTS.notifier.json is valid")
}

/// The api's intake of worker results.
pub fn intake_consumer() -> consumer::pull::Config {
    serde_json::from_str(INTAKE_JSON).expect("nats/jetstream/RESULTS.intake.json is valid")
}

/// The projector's durable pull consumer on `EVENTS`.
pub fn projector_consumer() -> consumer::pull::Config {
    serde_json::from_str(PROJECTOR_JSON).expect("nats/jetstream/EVENTS.projector.json is valid")
}

/// The `admin-revoked` bucket. Entries outlive any token: a day is far above the token lifetime.
pub fn admin_revoked_bucket(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: ADMIN_REVOKED_BUCKET.to_string(),
        description: "Revoked admin access tokens (token id → expiry)".to_string(),
        history: 1,
        max_age: Duration::from_secs(24 * 3600),
        storage: stream::StorageType::File,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// The `ip-bans` bucket: one key per banned IP, kept until the projector deletes it.
pub fn ip_bans_bucket(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: IP_BANS_BUCKET.to_string(),
        description: "Banned client IPs (written by the projector)".to_string(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// The `phone-reputation` bucket, written by the projector.
pub fn phone_reputation_bucket(replicas: usize) -> kv::Config {
    kv::Config {
        bucket: PHONE_REPUTATION_BUCKET.to_string(),
        description: "Phone number (E.164 digits) → status and counts (written by the projector)"
            .to_string(),
        history: 1,
        storage: stream::StorageType::File,
        num_replicas: replicas.max(1),
        ..Default::default()
    }
}

/// Creates or updates everything the system needs. Safe to run any number of times, by any
/// number of processes at once.
pub async fn ensure(js: &jetstream::Context, replicas: usize) -> Result<(), TopologyError> {
    ensure_stream(js, events_stream(replicas)).await?;
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|e| TopologyError::new("get stream EVENTS", e))?;
    stream
        .create_consumer(projector_consumer())
        .await
        .map_err(|e| TopologyError::new("create consumer projector", e))?;
    stream
        .create_consumer(dispatcher_consumer())
        .await
        .map_err(|e| TopologyError::new("create consumer dispatcher", e))?;
    stream
        .create_consumer(notifier_consumer())
        .await
        .map_err(|e| TopologyError::new("create consumer notifier", e))?;
    for cfg in [tasks_stream(replicas), results_stream(replicas)] {
        ensure_stream(js, cfg).await?;
    }
    js.get_stream(TASKS_STREAM)
        .await
        .map_err(|e| TopologyError::new("get stream TASKS", e))?
        .create_consumer(workers_consumer())
        .await
        .map_err(|e| TopologyError::new("create consumer workers", e))?;
    js.get_stream(RESULTS_STREAM)
        .await
        .map_err(|e| TopologyError::new("get stream RESULTS", e))?
        .create_consumer(intake_consumer())
        .await
        .map_err(|e| TopologyError::new("create consumer intake", e))?;
    ensure_kv(js, admin_revoked_bucket(replicas)).await?;
    ensure_kv(js, ip_bans_bucket(replicas)).await?;
    ensure_kv(js, phone_reputation_bucket(replicas)).await?;
    Ok(())
}

/// Creates `cfg`, or updates it without ever lowering its replicas.
async fn ensure_stream(
    js: &jetstream::Context,
    mut cfg: stream::Config,
) -> Result<(), TopologyError> {
    match js.get_stream(&cfg.name).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(|e| TopologyError::new("stream info", e))?;
            cfg.num_replicas = cfg.num_replicas.max(info.config.num_replicas);
            js.update_stream(cfg)
                .await
                .map_err(|e| TopologyError::new("update stream", e))?;
        }
        Err(_) => {
            js.get_or_create_stream(cfg)
                .await
                .map_err(|e| TopologyError::new("create stream", e))?;
        }
    }
    Ok(())
}

async fn ensure_kv(js: &jetstream::Context, cfg: kv::Config) -> Result<(), TopologyError> {
    if js.get_key_value(&cfg.bucket).await.is_ok() {
        return Ok(());
    }
    let name = cfg.bucket.clone();
    match js.create_key_value(cfg).await {
        Ok(_) => Ok(()),
        // Another process created it between our look-up and create.
        Err(_) if js.get_key_value(&name).await.is_ok() => Ok(()),
        Err(e) => Err(TopologyError::new("create kv bucket", e)),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("jetstream topology: {what}: {source}")]
pub struct TopologyError {
    what: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl TopologyError {
    fn new(what: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> Self {
        TopologyError {
            what,
            source: Box::new(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_parse_and_keep_the_invariants() {
        let s = events_stream(3);
        assert_eq!(s.name, EVENTS_STREAM);
        assert_eq!(s.subjects, vec![crate::subject::ALL.to_string()]);
        assert_eq!(s.retention, stream::RetentionPolicy::Limits);
        assert_eq!(s.storage, stream::StorageType::File);
        assert_eq!(s.max_age, Duration::ZERO, "the history never expires");
        assert!(
            s.duplicate_window >= Duration::from_secs(600),
            "dedup window ≥ 10 min"
        );
        assert_eq!(s.num_replicas, 3);
        let c = projector_consumer();
        assert_eq!(c.durable_name.as_deref(), Some(PROJECTOR_CONSUMER));
        assert_eq!(c.ack_policy, consumer::AckPolicy::Explicit);
    }
}
