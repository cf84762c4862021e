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

/// What a stage decided about one message; [`consume`] tells JetStream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Done with it (handled, or dropped on purpose): never delivered again.
    Ack,
    /// Not now: delivered again after this delay.
    Nak(Duration),
    /// Never deliverable (unreadable): not delivered again, and counted as terminated.
    Term,
}

/// One delivered message, as a stage sees it: no connection needed, so a stage's single step is
/// tested without NATS.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub subject: String,
    pub payload: bytes::Bytes,
    /// How long ago JetStream stored it (however often it was delivered since).
    pub age: Duration,
}

impl Delivery {
    pub fn of(msg: &async_nats::jetstream::Message) -> Self {
        let age = msg
            .info()
            .ok()
            .and_then(|i| {
                (time::OffsetDateTime::now_utc() - i.published)
                    .try_into()
                    .ok()
            })
            .unwrap_or_default();
        Delivery {
            subject: msg.subject.to_string(),
            payload: msg.payload.clone(),
            age,
        }
    }
}

/// Runs `step` over the messages of the durable pull consumer `config` on `stream` until
/// `shutdown`, and acks, naks or terminates each as `step` decides. The consumer is looked up,
/// or created from `config` when it is missing, on every (re)connection, so a consumer deleted
/// while the service runs comes back by itself; pulls carry a 5 s idle heartbeat, so a vanished
/// consumer is noticed within seconds. Failures are retried by the one supervisor
/// ([`crate::shutdown::supervise`]).
pub async fn consume<F, Fut>(
    js: async_nats::jetstream::Context,
    stream: &'static str,
    config: async_nats::jetstream::consumer::pull::Config,
    step: F,
    shutdown: impl std::future::Future<Output = ()>,
) where
    F: Fn(Delivery) -> Fut,
    Fut: std::future::Future<Output = Disposition>,
{
    use async_nats::jetstream::AckKind;
    use futures::StreamExt;
    let name = config.durable_name.clone().unwrap_or_default();
    let what = format!("consumer {name}");
    crate::shutdown::supervise(&what, shutdown, || async {
        let consumer = js
            .get_stream(stream)
            .await?
            .get_or_create_consumer(&name, config.clone())
            .await?;
        let mut messages = consumer
            .stream()
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await?;
        while let Some(msg) = messages.next().await {
            let msg = msg?;
            let kind = match step(Delivery::of(&msg)).await {
                Disposition::Ack => AckKind::Ack,
                Disposition::Nak(delay) => AckKind::Nak(Some(delay)),
                Disposition::Term => AckKind::Term,
            };
            // A lost ack is a redelivery, which every stage tolerates.
            if let Err(e) = msg.ack_with(kind).await {
                tracing::debug!(error = %e, consumer = name, "ack failed");
            }
        }
        anyhow::bail!("the message stream ended")
    })
    .await
}
