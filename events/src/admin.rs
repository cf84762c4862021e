//! Events of the `admin` aggregate (id = username).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::version::Upcaster;

pub const AGGREGATE_TYPE: &str = "admin";

/// Upcasters for admin events; empty while every event is at its first version.
pub const UPCASTERS: &[Upcaster] = &[];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum AdminEvent {
    /// The account exists. The hash stays in Postgres: it is a secret field, never published.
    AdminCreated {
        username: String,
        #[serde(default)]
        password_hash: String,
    },
    AdminPasswordChanged {
        #[serde(default)]
        password_hash: String,
    },
    /// An access token was issued.
    AdminLoggedIn {
        token_id: Uuid,
        expires_at: DateTime<Utc>,
        #[serde(default)]
        ip: Option<String>,
    },
    /// That token is refused from now on, on every api instance.
    AdminLoggedOut {
        token_id: Uuid,
        expires_at: DateTime<Utc>,
    },
}

impl DomainEvent for AdminEvent {
    fn event_type(&self) -> String {
        match self {
            AdminEvent::AdminCreated { .. } => "AdminCreated",
            AdminEvent::AdminPasswordChanged { .. } => "AdminPasswordChanged",
            AdminEvent::AdminLoggedIn { .. } => "AdminLoggedIn",
            AdminEvent::AdminLoggedOut { .. } => "AdminLoggedOut",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
