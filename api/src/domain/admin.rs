//! The `admin` aggregate (id = username): creation, password changes, logins and logouts.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::admin::AdminEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::passwords::Passwords;

#[derive(Debug, Clone)]
pub enum AdminCommand {
    Create {
        username: String,
        password_hash: String,
    },
    /// Verifies the password and issues token `token_id`.
    Login {
        password: String,
        token_id: Uuid,
        expires_at: DateTime<Utc>,
        ip: Option<String>,
    },
    Logout {
        token_id: Uuid,
        expires_at: DateTime<Utc>,
    },
    ChangePassword {
        current_password: String,
        new_password_hash: String,
    },
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum AdminError {
    /// 409: the account exists.
    #[error("the admin account already exists")]
    AlreadyExists,
    /// 401: unknown account or wrong password (indistinguishable on purpose).
    #[error("invalid username or password")]
    InvalidCredentials,
    /// 403: the current password given with a password change is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
}

#[derive(Clone)]
pub struct AdminServices {
    pub passwords: Passwords,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Admin {
    username: Option<String>,
    password_hash: String,
}

impl Aggregate for Admin {
    const TYPE: &'static str = events::admin::AGGREGATE_TYPE;
    type Command = AdminCommand;
    type Event = AdminEvent;
    type Error = AdminError;
    type Services = AdminServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            AdminCommand::Create {
                username,
                password_hash,
            } => {
                if self.username.is_some() {
                    return Err(AdminError::AlreadyExists);
                }
                sink.write(
                    AdminEvent::AdminCreated {
                        username,
                        password_hash,
                    },
                    self,
                )
                .await;
            }
            AdminCommand::Login {
                password,
                token_id,
                expires_at,
                ip,
            } => {
                if self.username.is_none() {
                    // Same cost as a real check, so timing does not reveal which usernames exist.
                    let _ = services.passwords.hash(password).await;
                    return Err(AdminError::InvalidCredentials);
                }
                if !services
                    .passwords
                    .verify(password, self.password_hash.clone())
                    .await
                {
                    return Err(AdminError::InvalidCredentials);
                }
                sink.write(
                    AdminEvent::AdminLoggedIn {
                        token_id,
                        expires_at,
                        ip,
                    },
                    self,
                )
                .await;
            }
            AdminCommand::Logout {
                token_id,
                expires_at,
            } => {
                if self.username.is_none() {
                    return Err(AdminError::InvalidCredentials);
                }
                sink.write(
                    AdminEvent::AdminLoggedOut {
                        token_id,
                        expires_at,
                    },
                    self,
                )
                .await;
            }
            AdminCommand::ChangePassword {
                current_password,
                new_password_hash,
            } => {
                if self.username.is_none() {
                    return Err(AdminError::InvalidCredentials);
                }
                if !services
                    .passwords
                    .verify(current_password, self.password_hash.clone())
                    .await
                {
                    return Err(AdminError::WrongPassword);
                }
                sink.write(
                    AdminEvent::AdminPasswordChanged {
                        password_hash: new_password_hash,
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
            AdminEvent::AdminCreated {
                username,
                password_hash,
            } => {
                self.username = Some(username);
                self.password_hash = password_hash;
            }
            AdminEvent::AdminPasswordChanged { password_hash } => {
                self.password_hash = password_hash
            }
            AdminEvent::AdminLoggedIn { .. } | AdminEvent::AdminLoggedOut { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Given = TestFramework<Admin>;

    fn services() -> AdminServices {
        AdminServices {
            passwords: Passwords::insecure_fast(),
        }
    }

    fn created(hash: &str) -> AdminEvent {
        AdminEvent::AdminCreated {
            username: "admin".into(),
            password_hash: hash.into(),
        }
    }

    async fn hash(pw: &str) -> String {
        Passwords::insecure_fast().hash(pw.into()).await.unwrap()
    }

    fn at() -> DateTime<Utc> {
        "2026-11-21T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn creating_a_new_admin_records_it() {
        Given::with(services())
            .given_no_previous_events()
            .when(AdminCommand::Create {
                username: "admin".into(),
                password_hash: "h".into(),
            })
            .then_expect_events(vec![created("h")]);
    }

    #[test]
    fn an_admin_is_created_only_once() {
        Given::with(services())
            .given(vec![created("h")])
            .when(AdminCommand::Create {
                username: "admin".into(),
                password_hash: "h2".into(),
            })
            .then_expect_error(AdminError::AlreadyExists);
    }

    #[tokio::test]
    async fn the_right_password_logs_in() {
        let token_id = Uuid::new_v4();
        Given::with(services())
            .given(vec![created(&hash("pw-123456789").await)])
            .when_async(AdminCommand::Login {
                password: "pw-123456789".into(),
                token_id,
                expires_at: at(),
                ip: Some("10.0.0.1".into()),
            })
            .await
            .then_expect_events(vec![AdminEvent::AdminLoggedIn {
                token_id,
                expires_at: at(),
                ip: Some("10.0.0.1".into()),
            }]);
    }

    #[tokio::test]
    async fn a_wrong_password_or_unknown_admin_is_refused_without_events() {
        let login = |pw: &str| AdminCommand::Login {
            password: pw.into(),
            token_id: Uuid::new_v4(),
            expires_at: at(),
            ip: None,
        };
        Given::with(services())
            .given(vec![created(&hash("pw-123456789").await)])
            .when_async(login("nope"))
            .await
            .then_expect_error(AdminError::InvalidCredentials);
        Given::with(services())
            .given_no_previous_events()
            .when_async(login("pw-123456789"))
            .await
            .then_expect_error(AdminError::InvalidCredentials);
    }

    #[tokio::test]
    async fn changing_the_password_needs_the_current_one() {
        let old = hash("old-password-1").await;
        Given::with(services())
            .given(vec![created(&old)])
            .when_async(AdminCommand::ChangePassword {
                current_password: "old-password-1".into(),
                new_password_hash: "new-hash".into(),
            })
            .await
            .then_expect_events(vec![AdminEvent::AdminPasswordChanged {
                password_hash: "new-hash".into(),
            }]);
        Given::with(services())
            .given(vec![created(&old)])
            .when_async(AdminCommand::ChangePassword {
                current_password: "guess".into(),
                new_password_hash: "new-hash".into(),
            })
            .await
            .then_expect_error(AdminError::WrongPassword);
    }

    #[tokio::test]
    async fn after_a_change_only_the_new_password_works() {
        let old = hash("old-password-1").await;
        let new = hash("new-password-2").await;
        let history = vec![
            created(&old),
            AdminEvent::AdminPasswordChanged { password_hash: new },
        ];
        let login = |pw: &str| AdminCommand::Login {
            password: pw.into(),
            token_id: Uuid::nil(),
            expires_at: at(),
            ip: None,
        };
        Given::with(services())
            .given(history.clone())
            .when_async(login("old-password-1"))
            .await
            .then_expect_error(AdminError::InvalidCredentials);
        let events = Given::with(services())
            .given(history)
            .when_async(login("new-password-2"))
            .await
            .inspect_result()
            .unwrap();
        assert_eq!(events.len(), 1);
    }

    #[test]
    fn logout_records_the_revoked_token() {
        let token_id = Uuid::new_v4();
        Given::with(services())
            .given(vec![created("h")])
            .when(AdminCommand::Logout {
                token_id,
                expires_at: at(),
            })
            .then_expect_events(vec![AdminEvent::AdminLoggedOut {
                token_id,
                expires_at: at(),
            }]);
    }
}
