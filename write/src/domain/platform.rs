//! The `platform` aggregate (id = platform UUID): a host platform registered by an admin, and
//! the API key it calls the platform endpoints with (revocable).

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::platform::PlatformEvent;
use serde::{Deserialize, Serialize};

use super::credential;

pub use events::platform::{key_platform_id, KEY_PREFIX};

/// A new API key for `platform_id` (see [`credential`]).
pub fn new_key(platform_id: uuid::Uuid) -> String {
    credential::issue(KEY_PREFIX, platform_id)
}

#[derive(Debug, Clone)]
pub enum PlatformCommand {
    Register {
        name: String,
        key_hash: String,
        by: String,
    },
    Revoke {
        by: String,
    },
    SetWebhook {
        url: String,
        from_cursor: u64,
    },
    RemoveWebhook,
    /// What one delivery attempt gave (recorded by the webhook sender).
    RecordAttempt {
        cursor: u64,
        user_id: String,
        attempt: u32,
        outcome: String,
        status: Option<u16>,
        error: Option<String>,
    },
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PlatformError {
    /// 409
    #[error("this platform already exists")]
    AlreadyRegistered,
    /// 404
    #[error("no such platform")]
    Unknown,
    /// 409
    #[error("this platform's key is already revoked")]
    AlreadyRevoked,
    /// 409
    #[error("this platform has no webhook")]
    NoWebhook,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Platform {
    name: Option<String>,
    key_hash: String,
    revoked: bool,
    webhook: Option<String>,
}

impl Platform {
    /// True when `key` is this platform's and it is not revoked.
    pub fn accepts(&self, key: &str) -> bool {
        self.name.is_some() && !self.revoked && credential::matches(key, &self.key_hash)
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Where decisions are POSTed, if anywhere.
    pub fn webhook(&self) -> Option<&str> {
        self.webhook.as_deref()
    }
}

impl Aggregate for Platform {
    const TYPE: &'static str = events::platform::AGGREGATE_TYPE;
    type Command = PlatformCommand;
    type Event = PlatformEvent;
    type Error = PlatformError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            PlatformCommand::Register { name, key_hash, by } => {
                if self.name.is_some() {
                    return Err(PlatformError::AlreadyRegistered);
                }
                PlatformEvent::PlatformRegistered { name, key_hash, by }
            }
            PlatformCommand::Revoke { by } => {
                if self.name.is_none() {
                    return Err(PlatformError::Unknown);
                }
                if self.revoked {
                    return Err(PlatformError::AlreadyRevoked);
                }
                PlatformEvent::PlatformRevoked { by }
            }
            PlatformCommand::SetWebhook { url, from_cursor } => {
                self.live()?;
                PlatformEvent::PlatformWebhookSet { url, from_cursor }
            }
            PlatformCommand::RemoveWebhook => {
                self.live()?;
                if self.webhook.is_none() {
                    return Err(PlatformError::NoWebhook);
                }
                PlatformEvent::PlatformWebhookRemoved {}
            }
            PlatformCommand::RecordAttempt {
                cursor,
                user_id,
                attempt,
                outcome,
                status,
                error,
            } => {
                if self.name.is_none() {
                    return Err(PlatformError::Unknown);
                }
                PlatformEvent::WebhookAttempted {
                    cursor,
                    user_id,
                    attempt,
                    outcome,
                    status,
                    error,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PlatformEvent::PlatformRegistered { name, key_hash, .. } => {
                self.name = Some(name);
                self.key_hash = key_hash;
            }
            PlatformEvent::PlatformRevoked { .. } => {
                self.revoked = true;
                self.webhook = None;
            }
            PlatformEvent::PlatformWebhookSet { url, .. } => self.webhook = Some(url),
            PlatformEvent::PlatformWebhookRemoved {} => self.webhook = None,
            PlatformEvent::WebhookAttempted { .. } => {}
        }
    }
}

impl Platform {
    /// Registered and not revoked.
    fn live(&self) -> Result<(), PlatformError> {
        match (&self.name, self.revoked) {
            (None, _) => Err(PlatformError::Unknown),
            (Some(_), true) => Err(PlatformError::AlreadyRevoked),
            (Some(_), false) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Given = TestFramework<Platform>;

    fn registered(hash: &str) -> PlatformEvent {
        PlatformEvent::PlatformRegistered {
            name: "chat.example".into(),
            key_hash: hash.into(),
            by: "admin".into(),
        }
    }

    #[test]
    fn a_key_is_accepted_until_its_platform_is_revoked() {
        let id = uuid::Uuid::new_v4();
        let key = new_key(id);
        assert_eq!(key_platform_id(&key), Some(id));
        let mut p = Platform::default();
        assert!(!p.accepts(&key), "unknown platform");
        p.apply(registered(&credential::hash(&key)));
        assert!(p.accepts(&key));
        assert!(!p.accepts(&new_key(id)), "another secret for the same id");
        p.apply(PlatformEvent::PlatformRevoked { by: "admin".into() });
        assert!(!p.accepts(&key), "revoked");
    }

    #[test]
    fn a_platform_registers_once_and_is_revoked_once() {
        let register = || PlatformCommand::Register {
            name: "chat.example".into(),
            key_hash: "h".into(),
            by: "admin".into(),
        };
        Given::with(())
            .given_no_previous_events()
            .when(register())
            .then_expect_events(vec![registered("h")]);
        Given::with(())
            .given(vec![registered("h")])
            .when(register())
            .then_expect_error(PlatformError::AlreadyRegistered);
        let revoked = PlatformEvent::PlatformRevoked { by: "admin".into() };
        Given::with(())
            .given(vec![registered("h")])
            .when(PlatformCommand::Revoke { by: "admin".into() })
            .then_expect_events(vec![revoked.clone()]);
        Given::with(())
            .given(vec![registered("h"), revoked])
            .when(PlatformCommand::Revoke { by: "admin".into() })
            .then_expect_error(PlatformError::AlreadyRevoked);
        Given::with(())
            .given_no_previous_events()
            .when(PlatformCommand::Revoke { by: "admin".into() })
            .then_expect_error(PlatformError::Unknown);
    }

    #[test]
    fn only_a_live_platform_sets_or_removes_its_webhook() {
        let set = || PlatformCommand::SetWebhook {
            url: "https://chat.example/hooks".into(),
            from_cursor: 7,
        };
        let was_set = PlatformEvent::PlatformWebhookSet {
            url: "https://chat.example/hooks".into(),
            from_cursor: 7,
        };
        Given::with(())
            .given(vec![registered("h")])
            .when(set())
            .then_expect_events(vec![was_set.clone()]);
        Given::with(())
            .given(vec![registered("h"), was_set.clone()])
            .when(PlatformCommand::RemoveWebhook)
            .then_expect_events(vec![PlatformEvent::PlatformWebhookRemoved {}]);
        Given::with(())
            .given(vec![registered("h")])
            .when(PlatformCommand::RemoveWebhook)
            .then_expect_error(PlatformError::NoWebhook);
        Given::with(())
            .given(vec![
                registered("h"),
                PlatformEvent::PlatformRevoked { by: "admin".into() },
            ])
            .when(set())
            .then_expect_error(PlatformError::AlreadyRevoked);
        Given::with(())
            .given_no_previous_events()
            .when(set())
            .then_expect_error(PlatformError::Unknown);
        let mut p = Platform::default();
        p.apply(registered("h"));
        p.apply(was_set);
        assert_eq!(p.webhook(), Some("https://chat.example/hooks"));
        p.apply(PlatformEvent::PlatformRevoked { by: "admin".into() });
        assert_eq!(p.webhook(), None, "a revoked platform gets no webhooks");
    }
}
