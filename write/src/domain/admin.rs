//! The `admin` aggregate (id = username): creation and password changes, plus
//! [`authenticate`], the password check a login runs before it opens a session.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateContext, AggregateError, EventStore};
use events::admin::AdminEvent;
use serde::{Deserialize, Serialize};

use crate::passwords::Passwords;

#[derive(Debug, Clone)]
pub enum AdminCommand {
    Create {
        username: String,
        password_hash: String,
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
    /// 503: too many password checks at once (or the hashing failed); retry shortly.
    #[error("too many password checks at once")]
    Busy,
}

#[derive(Clone)]
pub struct AdminServices {
    pub passwords: Passwords,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
            AdminCommand::ChangePassword {
                current_password,
                new_password_hash,
            } => {
                if self.username.is_none() {
                    return Err(AdminError::InvalidCredentials);
                }
                match services
                    .passwords
                    .verify(current_password, self.password_hash.clone())
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => return Err(AdminError::WrongPassword),
                    Err(_) => return Err(AdminError::Busy),
                }
                let event = AdminEvent::AdminPasswordChanged {
                    password_hash: new_password_hash,
                };
                sink.write(event, self).await;
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
        }
    }
}

impl Admin {
    pub fn exists(&self) -> bool {
        self.username.is_some()
    }
}

/// Checks `password` against the stored hash of `username`. Reads the aggregate, writes nothing,
/// so any number of logins of one admin run side by side. An unknown username costs the same
/// as a wrong password, so timing does not reveal which accounts exist.
pub async fn authenticate<ES: EventStore<Admin>>(
    store: &ES,
    passwords: &Passwords,
    username: &str,
    password: String,
) -> Result<(), AggregateError<AdminError>> {
    let mut context = store.load_aggregate(username).await?;
    let admin = context.aggregate();
    let ok = match admin.username {
        Some(_) => {
            passwords
                .verify(password, admin.password_hash.clone())
                .await
        }
        None => passwords.hash(password).await.map(|_| false),
    };
    match ok {
        Ok(true) => Ok(()),
        Ok(false) => Err(AggregateError::UserError(AdminError::InvalidCredentials)),
        Err(_) => Err(AggregateError::UserError(AdminError::Busy)),
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
    async fn changing_the_password_needs_the_current_one() {
        let old = hash("old-password-1").await;
        let change = |current: &str| AdminCommand::ChangePassword {
            current_password: current.into(),
            new_password_hash: "new-hash".into(),
        };
        Given::with(services())
            .given(vec![created(&old)])
            .when_async(change("old-password-1"))
            .await
            .then_expect_events(vec![AdminEvent::AdminPasswordChanged {
                password_hash: "new-hash".into(),
            }]);
        Given::with(services())
            .given(vec![created(&old)])
            .when_async(change("guess"))
            .await
            .then_expect_error(AdminError::WrongPassword);
        Given::with(services())
            .given_no_previous_events()
            .when_async(change("old-password-1"))
            .await
            .then_expect_error(AdminError::InvalidCredentials);
    }

    #[tokio::test]
    async fn authentication_follows_the_latest_password_and_knows_no_strangers() {
        use cqrs_es::mem_store::MemStore;
        let store = MemStore::<Admin>::default();
        let cqrs = cqrs_es::CqrsFramework::new(store.clone(), vec![], services());
        let p = Passwords::insecure_fast();
        let create = AdminCommand::Create {
            username: "admin".into(),
            password_hash: hash("old-password-1").await,
        };
        cqrs.execute("admin", create).await.unwrap();
        assert!(authenticate(&store, &p, "admin", "old-password-1".into())
            .await
            .is_ok());
        let change = AdminCommand::ChangePassword {
            current_password: "old-password-1".into(),
            new_password_hash: hash("new-password-2").await,
        };
        cqrs.execute("admin", change).await.unwrap();
        let refused = |r: Result<(), AggregateError<AdminError>>| {
            matches!(
                r,
                Err(AggregateError::UserError(AdminError::InvalidCredentials))
            )
        };
        assert!(refused(
            authenticate(&store, &p, "admin", "old-password-1".into()).await
        ));
        assert!(authenticate(&store, &p, "admin", "new-password-2".into())
            .await
            .is_ok());
        assert!(refused(
            authenticate(&store, &p, "nobody", "new-password-2".into()).await
        ));
    }
}
