//! A running api: `Api::start` checks the configuration, connects, builds the state, starts the
//! background stages and the router; `run` serves it until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use axum::Router;
use common::shutdown::Stages;
use events::topology;

use crate::app::{AppState, Keys, Links};
use crate::config::Config;
use crate::passwords::Passwords;

/// A running api: its router and its background stages.
pub struct Api {
    pub state: AppState,
    pub router: Router,
    pub http_limits: common::ops::HttpLimits,
    stages: Stages,
}

impl Api {
    /// Checks the configuration, connects, migrates, ensures the JetStream topology and starts
    /// the background stages.
    pub async fn start(config: &Config, passwords: Passwords) -> anyhow::Result<Api> {
        let keys = Keys::check(config)?;
        let links = Links::open(config).await?;
        let stages = Stages::new();
        let js = jetstream::new(links.nats.clone());
        let replicas = config.conn.jetstream_replicas;
        stages.spawn(|stop| ensure_topology(js.clone(), replicas, stop));
        let issuer = keys.callout_issuer.clone();
        let state = AppState::new(config, keys, links, passwords);
        state.spawn_mirrors(&stages, config.relay_enabled);
        spawn_pipeline(&state, config, issuer, &stages)?;
        let router = crate::http::router(
            state.clone(),
            state.readiness(),
            crate::http::Limits {
                max_body_bytes: config.max_body_bytes,
                request_timeout: Duration::from_secs(config.request_timeout_seconds.max(1)),
                upload_timeout: Duration::from_secs(config.upload_timeout_seconds.max(1)),
            },
        );
        Ok(Api {
            http_limits: config.http_limits(),
            state,
            router,
            stages,
        })
    }

    /// Stops the background stages (the relay finishes its current batch) and waits for them.
    pub async fn shutdown(self) {
        if !self.stages.stop(Duration::from_secs(10)).await {
            tracing::warn!("some background stages did not stop in time");
        }
        let _ = self.state.nats.flush().await;
    }
}

/// Starts the voice pipeline's stages (the durable consumers share the work between
/// instances) and, with an issuer key, the workers' auth callout.
fn spawn_pipeline(
    s: &AppState,
    config: &Config,
    issuer: Option<Arc<nkeys::KeyPair>>,
    stages: &Stages,
) -> anyhow::Result<()> {
    use pipeline::worker_access::{callout::Callout, heartbeats};
    if let Some(issuer) = issuer {
        let callout = Callout {
            workers: s.worker_store.clone(),
            pool: s.pool.clone(),
            issuer,
            ttl: config.worker_credential_ttl_seconds,
        };
        let nats = s.nats.clone();
        stages.spawn(|stop| callout.run(nats, stop));
    }
    let dispatch = pipeline::dispatch::DispatchStage {
        dispatcher: pipeline::dispatch::Dispatcher {
            store: s.voice_task_store.clone(),
            storage: s.storage.clone(),
            js: s.js.clone(),
        },
        phones: s.phones.clone(),
    };
    stages.spawn(|stop| dispatch.run(stop));
    let intake = pipeline::intake::Intake {
        tasks: s.voice_tasks.clone(),
    };
    let js = s.js.clone();
    stages.spawn(|stop| intake.run(js, stop));
    match pipeline::notifier::Notifier::new(s.pool.clone(), config.email.clone())? {
        Some(notifier) => {
            let js = s.js.clone();
            stages.spawn(|stop| notifier.run(js, stop));
        }
        None => tracing::warn!(
            "no RESEND_API_KEY nor ADMIN_ALERT_WEBHOOK_URL: emails and admin alerts are off"
        ),
    }
    let (pool, nats) = (s.pool.clone(), s.nats.clone());
    stages.spawn(|stop| heartbeats::run(pool, nats, stop));
    let sender = crate::webhooks::Sender {
        pool: s.pool.clone(),
        nats: s.nats.clone(),
        js: s.js.clone(),
        platforms: s.platforms.clone(),
        signing_key: s.webhook_key.clone(),
        targets: s.webhook_targets,
    };
    stages.spawn(|stop| sender.run(stop));
    Ok(())
}

/// Creates streams, consumers and buckets, retrying while NATS is unreachable.
async fn ensure_topology(
    js: jetstream::Context,
    replicas: usize,
    shutdown: impl Future<Output = ()>,
) {
    common::shutdown::supervise("JetStream topology", shutdown, || async {
        topology::ensure(&js, replicas).await?;
        Ok(common::shutdown::Next::Stop)
    })
    .await
}

/// Serves the api on `listener` until `shutdown`, then drains background work.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let api = Api::start(
        &config,
        Passwords::with_threads(config.password_hash_threads),
    )
    .await?;
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    common::ops::serve(listener, api.router.clone(), api.http_limits, shutdown).await?;
    api.shutdown().await;
    Ok(())
}
