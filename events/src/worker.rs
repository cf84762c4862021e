//! Events of the `worker` aggregate (id = worker UUID): analysis workers and their credentials.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::version::Upcaster;

pub const AGGREGATE_TYPE: &str = "worker";

pub const UPCASTERS: &[Upcaster] = &[];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum WorkerEvent {
    /// A worker exists. Only the SHA-256 of its token is kept (in Postgres; never published).
    WorkerRegistered {
        name: String,
        #[serde(default)]
        token_hash: String,
    },
    /// Its credential is void: it is disconnected and cannot reconnect.
    WorkerRevoked { by: String },
}

impl DomainEvent for WorkerEvent {
    fn event_type(&self) -> String {
        match self {
            WorkerEvent::WorkerRegistered { .. } => "WorkerRegistered",
            WorkerEvent::WorkerRevoked { .. } => "WorkerRevoked",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Worker tokens look like `blw_<worker id, 32 hex>_<secret>`: the id finds the worker, the
/// secret proves the holder.
pub const TOKEN_PREFIX: &str = "blw_";

/// The worker id a token claims (not verified: only the auth callout can say if it is valid).
pub fn token_worker_id(token: &str) -> Option<uuid::Uuid> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if secret.is_empty() {
        return None;
    }
    uuid::Uuid::parse_str(id).ok()
}

/// Heartbeat subject of a worker.
pub fn heartbeat_subject(worker_id: uuid::Uuid) -> String {
    format!("workers.heartbeat.{worker_id}")
}

/// A worker's private inbox prefix: the only replies it can receive.
pub fn inbox_prefix(worker_id: uuid::Uuid) -> String {
    format!("_INBOX_{}", worker_id.simple())
}
