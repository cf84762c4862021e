//! Events of the `admin` aggregate (id = username) and of `admin_session` (id = token id).
//!
//! Sessions are aggregates of their own, so concurrent logins of one admin never contend.

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
}

impl DomainEvent for AdminEvent {
    fn event_type(&self) -> String {
        match self {
            AdminEvent::AdminCreated { .. } => "AdminCreated",
            AdminEvent::AdminPasswordChanged { .. } => "AdminPasswordChanged",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

pub const SESSION_AGGREGATE_TYPE: &str = "admin_session";

/// Upcasters for session events.
pub const SESSION_UPCASTERS: &[Upcaster] = &[];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum AdminSessionEvent {
    /// An access token was issued after a password check.
    AdminLoggedIn {
        token_id: Uuid,
        username: String,
        expires_at: DateTime<Utc>,
        #[serde(default)]
        ip: Option<String>,
    },
    /// That token is refused from now on, on every api instance.
    AdminLoggedOut {
        token_id: Uuid,
        username: String,
        expires_at: DateTime<Utc>,
    },
}

impl DomainEvent for AdminSessionEvent {
    fn event_type(&self) -> String {
        match self {
            AdminSessionEvent::AdminLoggedIn { .. } => "AdminLoggedIn",
            AdminSessionEvent::AdminLoggedOut { .. } => "AdminLoggedOut",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
