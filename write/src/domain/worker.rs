//! The `worker` aggregate (id = worker UUID): registration and revocation of the credential a
//! worker uses to reach NATS (checked by the auth callout on every connect).

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::worker::WorkerEvent;
use serde::{Deserialize, Serialize};

use super::credential;

pub use events::worker::{token_worker_id, TOKEN_PREFIX};

/// A new token for `worker_id` (see [`credential`]).
pub fn new_token(worker_id: uuid::Uuid) -> String {
    credential::issue(TOKEN_PREFIX, worker_id)
}

/// What is stored of a token.
pub fn hash_token(token: &str) -> String {
    credential::hash(token)
}

#[derive(Debug, Clone)]
pub enum WorkerCommand {
    Register { name: String, token_hash: String },
    Revoke { by: String },
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum WorkerError {
    /// 409
    #[error("this worker already exists")]
    AlreadyRegistered,
    /// 404
    #[error("no such worker")]
    Unknown,
    /// 409
    #[error("this worker is already revoked")]
    AlreadyRevoked,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Worker {
    name: Option<String>,
    token_hash: String,
    revoked: bool,
}

impl Worker {
    /// True when `token` is this worker's and it is not revoked.
    pub fn accepts(&self, token: &str) -> bool {
        self.name.is_some() && !self.revoked && credential::matches(token, &self.token_hash)
    }

    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Aggregate for Worker {
    const TYPE: &'static str = events::worker::AGGREGATE_TYPE;
    type Command = WorkerCommand;
    type Event = WorkerEvent;
    type Error = WorkerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            WorkerCommand::Register { name, token_hash } => {
                if self.name.is_some() {
                    return Err(WorkerError::AlreadyRegistered);
                }
                WorkerEvent::WorkerRegistered { name, token_hash }
            }
            WorkerCommand::Revoke { by } => {
                if self.name.is_none() {
                    return Err(WorkerError::Unknown);
                }
                if self.revoked {
                    return Err(WorkerError::AlreadyRevoked);
                }
                WorkerEvent::WorkerRevoked { by }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            WorkerEvent::WorkerRegistered { name, token_hash } => {
                self.name = Some(name);
                self.token_hash = token_hash;
            }
            WorkerEvent::WorkerRevoked { .. } => self.revoked = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Given = TestFramework<Worker>;

    fn registered(hash: &str) -> WorkerEvent {
        WorkerEvent::WorkerRegistered {
            name: "w1".into(),
            token_hash: hash.into(),
        }
    }

    #[test]
    fn tokens_name_their_worker_and_only_the_hash_is_kept() {
        let id = uuid::Uuid::new_v4();
        let token = new_token(id);
        assert_eq!(token_worker_id(&token), Some(id));
        assert_eq!(token_worker_id("blw_nothex_x"), None);
        assert_eq!(token_worker_id(&format!("blw_{}_", id.simple())), None);
        let mut w = Worker::default();
        w.apply(registered(&hash_token(&token)));
        assert!(w.accepts(&token));
        assert!(!w.accepts(&new_token(id)), "another secret for the same id");
        w.apply(WorkerEvent::WorkerRevoked { by: "admin".into() });
        assert!(!w.accepts(&token), "revoked");
    }

    #[test]
    fn a_worker_registers_once_and_is_revoked_once() {
        Given::with(())
            .given_no_previous_events()
            .when(WorkerCommand::Register {
                name: "w1".into(),
                token_hash: "h".into(),
            })
            .then_expect_events(vec![registered("h")]);
        Given::with(())
            .given(vec![registered("h")])
            .when(WorkerCommand::Register {
                name: "w1".into(),
                token_hash: "h".into(),
            })
            .then_expect_error(WorkerError::AlreadyRegistered);
        let revoked = WorkerEvent::WorkerRevoked { by: "admin".into() };
        Given::with(())
            .given(vec![registered("h")])
            .when(WorkerCommand::Revoke { by: "admin".into() })
            .then_expect_events(vec![revoked.clone()]);
        Given::with(())
            .given(vec![registered("h"), revoked])
            .when(WorkerCommand::Revoke { by: "admin".into() })
            .then_expect_error(WorkerError::AlreadyRevoked);
        Given::with(())
            .given_no_previous_events()
            .when(WorkerCommand::Revoke { by: "admin".into() })
            .then_expect_error(WorkerError::Unknown);
    }
}
