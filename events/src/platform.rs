//! Events of the `platform` aggregate (id = platform UUID): host platforms (video-chat sites)
//! registered by an admin, and the API keys they call the platform endpoints with.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::version::Upcaster;

pub const AGGREGATE_TYPE: &str = "platform";

pub const UPCASTERS: &[Upcaster] = &[];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum PlatformEvent {
    /// A host platform exists. Only the SHA-256 of its API key is kept, in the event store: the
    /// hash is removed from the stream (a secret field).
    PlatformRegistered {
        name: String,
        #[serde(default)]
        key_hash: String,
        by: String,
    },
    /// Its API key is void: every platform endpoint answers it 401; no more webhooks.
    PlatformRevoked { by: String },
    /// Decisions after `fromCursor` (where the event log ended when it was set) are POSTed to
    /// `url`, signed.
    PlatformWebhookSet { url: String, from_cursor: u64 },
    /// No more webhooks.
    PlatformWebhookRemoved {},
    /// One attempt to deliver the decision at `cursor` (about `userId`): `delivered` (a 2xx),
    /// `failed` (retried later) or `abandoned` (still failing 24 hours after the first try; the
    /// next decisions follow).
    WebhookAttempted {
        cursor: u64,
        user_id: String,
        attempt: u32,
        outcome: String,
        status: Option<u16>,
        error: Option<String>,
    },
}

impl DomainEvent for PlatformEvent {
    fn event_type(&self) -> String {
        match self {
            PlatformEvent::PlatformRegistered { .. } => "PlatformRegistered",
            PlatformEvent::PlatformRevoked { .. } => "PlatformRevoked",
            PlatformEvent::PlatformWebhookSet { .. } => "PlatformWebhookSet",
            PlatformEvent::PlatformWebhookRemoved { .. } => "PlatformWebhookRemoved",
            PlatformEvent::WebhookAttempted { .. } => "WebhookAttempted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Platform API keys look like `blp_<platform id, 32 hex>_<secret>`: the id finds the platform,
/// the secret proves the holder.
pub const KEY_PREFIX: &str = "blp_";

/// The platform a key claims (not verified: the platform's events say whether it is valid).
pub fn key_platform_id(key: &str) -> Option<uuid::Uuid> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if secret.is_empty() || id.len() != 32 {
        return None;
    }
    uuid::Uuid::parse_str(id).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_platform_and_nothing_else_parses() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            key_platform_id(&format!("blp_{}_secret", id.simple())),
            Some(id)
        );
        for bad in [
            "",
            "blp_",
            "blw_0123",
            &format!("blp_{}_", id.simple()),
            &format!("blp_{id}_secret"),
        ] {
            assert_eq!(key_platform_id(bad), None, "{bad}");
        }
    }
}
