//! The `admin_session` aggregate (id = token id): one login, at most one logout.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::admin::AdminSessionEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub enum SessionCommand {
    /// Issued only after [`super::admin::authenticate`] accepted the password.
    Open {
        token_id: Uuid,
        username: String,
        expires_at: DateTime<Utc>,
        ip: Option<String>,
    },
    Close,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SessionError {
    /// 409: token ids are random; a repeat is a bug or a replay.
    #[error("this session already exists")]
    AlreadyOpen,
    /// 401: nothing to log out of.
    #[error("the session does not exist or has ended")]
    NotOpen,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Session {
    token_id: Option<Uuid>,
    username: String,
    expires_at: Option<DateTime<Utc>>,
    closed: bool,
}

impl Session {
    /// Whether this is an open session of `username` (the token's `sub`).
    pub fn is_open_for(&self, username: &str) -> bool {
        self.token_id.is_some() && !self.closed && self.username == username
    }
}

impl Aggregate for Session {
    const TYPE: &'static str = events::admin::SESSION_AGGREGATE_TYPE;
    type Command = SessionCommand;
    type Event = AdminSessionEvent;
    type Error = SessionError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            SessionCommand::Open {
                token_id,
                username,
                expires_at,
                ip,
            } => {
                if self.token_id.is_some() {
                    return Err(SessionError::AlreadyOpen);
                }
                sink.write(
                    AdminSessionEvent::AdminLoggedIn {
                        token_id,
                        username,
                        expires_at,
                        ip,
                    },
                    self,
                )
                .await;
            }
            SessionCommand::Close => {
                let (Some(token_id), Some(expires_at), false) =
                    (self.token_id, self.expires_at, self.closed)
                else {
                    return Err(SessionError::NotOpen);
                };
                let username = self.username.clone();
                sink.write(
                    AdminSessionEvent::AdminLoggedOut {
                        token_id,
                        username,
                        expires_at,
                    },
                    self,
                )
                .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            AdminSessionEvent::AdminLoggedIn {
                token_id,
                username,
                expires_at,
                ..
            } => {
                self.token_id = Some(token_id);
                self.username = username;
                self.expires_at = Some(expires_at);
            }
            AdminSessionEvent::AdminLoggedOut { .. } => self.closed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Given = TestFramework<Session>;

    fn at() -> DateTime<Utc> {
        "2026-11-21T12:15:00Z".parse().unwrap()
    }

    fn opened(id: Uuid) -> AdminSessionEvent {
        AdminSessionEvent::AdminLoggedIn {
            token_id: id,
            username: "admin".into(),
            expires_at: at(),
            ip: None,
        }
    }

    #[test]
    fn a_session_opens_once() {
        let id = Uuid::new_v4();
        let open = SessionCommand::Open {
            token_id: id,
            username: "admin".into(),
            expires_at: at(),
            ip: None,
        };
        Given::with(())
            .given_no_previous_events()
            .when(open.clone())
            .then_expect_events(vec![opened(id)]);
        Given::with(())
            .given(vec![opened(id)])
            .when(open)
            .then_expect_error(SessionError::AlreadyOpen);
    }

    #[test]
    fn a_session_closes_once_and_only_if_open() {
        let id = Uuid::new_v4();
        let closed = AdminSessionEvent::AdminLoggedOut {
            token_id: id,
            username: "admin".into(),
            expires_at: at(),
        };
        Given::with(())
            .given(vec![opened(id)])
            .when(SessionCommand::Close)
            .then_expect_events(vec![closed.clone()]);
        Given::with(())
            .given(vec![opened(id), closed])
            .when(SessionCommand::Close)
            .then_expect_error(SessionError::NotOpen);
        Given::with(())
            .given_no_previous_events()
            .when(SessionCommand::Close)
            .then_expect_error(SessionError::NotOpen);
    }
}
