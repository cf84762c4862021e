//! NATS connections.

use std::time::Duration;

use async_nats::{Client, ConnectOptions};

/// How a process authenticates to NATS.
#[derive(Clone, Default)]
pub struct NatsAuth {
    pub user: Option<String>,
    pub password: Option<String>,
    /// A worker's token (auth callout); used when no user is set.
    pub token: Option<String>,
    /// A private inbox prefix (workers: their permissions cover only `<prefix>.>`, so they
    /// cannot read replies meant for other clients).
    pub inbox_prefix: Option<String>,
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsAuth")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Connects, retrying in the background: the process starts while NATS is down and reconnects
/// by itself for as long as it runs.
pub async fn connect(
    url: &str,
    name: &str,
    auth: &NatsAuth,
) -> Result<Client, async_nats::ConnectError> {
    let mut opts = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(3))
        .request_timeout(Some(Duration::from_secs(5)))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => tracing::info!("nats connected"),
                async_nats::Event::Disconnected => tracing::warn!("nats disconnected"),
                other => tracing::info!(event = %other, "nats event"),
            }
        });
    if let Some(prefix) = &auth.inbox_prefix {
        opts = opts.custom_inbox_prefix(prefix.clone());
    }
    if let (Some(u), Some(p)) = (&auth.user, &auth.password) {
        opts = opts.user_and_password(u.clone(), p.clone());
    } else if let Some(t) = &auth.token {
        opts = opts.token(t.clone());
    }
    opts.connect(url).await
}

/// True while the client holds a live connection.
pub fn is_connected(client: &Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}
