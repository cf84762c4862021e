//! `/healthz`, `/readyz` and `/metrics`, the same on every process.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use sqlx::PgPool;

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use).
pub fn metrics_handle() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .expect("static buckets are valid")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (tests); ours still renders its own.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// A named readiness check beyond Postgres and NATS.
pub type Check = (&'static str, Arc<dyn Fn() -> bool + Send + Sync>);

/// What `/readyz` checks.
#[derive(Clone, Default)]
pub struct Readiness {
    pub db: Option<PgPool>,
    pub nats: Option<async_nats::Client>,
    /// Extra named checks (e.g. "revocations synced").
    pub checks: Vec<Check>,
}

impl Readiness {
    /// Runs every check; `Err` names what is down.
    pub async fn check(&self) -> Result<(), Vec<&'static str>> {
        let mut down = Vec::new();
        if let Some(db) = &self.db {
            let ok =
                tokio::time::timeout(Duration::from_secs(2), sqlx::query("SELECT 1").execute(db))
                    .await
                    .is_ok_and(|r| r.is_ok());
            if !ok {
                down.push("postgres");
            }
        }
        if let Some(nats) = &self.nats {
            if !crate::nats::is_connected(nats) {
                down.push("nats");
            }
        }
        for (name, check) in &self.checks {
            if !check() {
                down.push(*name);
            }
        }
        if down.is_empty() {
            Ok(())
        } else {
            Err(down)
        }
    }
}

/// The request-id header: kept from the client when plain, else generated; echoed and logged.
pub const REQUEST_ID: axum::http::HeaderName = axum::http::HeaderName::from_static("x-request-id");

/// Seconds a client should wait before retrying while a dependency is down.
pub const RETRY_AFTER_SECONDS: u64 = 5;

/// Routes `/healthz`, `/readyz` and `/metrics`.
pub fn router(readiness: Readiness) -> Router {
    metrics_handle();
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(Arc::new(readiness))
}

async fn readyz(State(r): State<Arc<Readiness>>) -> Response {
    match r.check().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(down) => {
            let mut resp = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "error": "not_ready",
                    "message": format!("unavailable: {}", down.join(", ")),
                    "down": down,
                })),
            )
                .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            resp
        }
    }
}

async fn render_metrics() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics_handle().render(),
    )
        .into_response()
}

/// What a client may cost the server, per connection.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    /// A request's headers must arrive within this time (also the idle time allowed between
    /// requests on a kept-alive connection), or the connection is closed: trickled headers
    /// cannot hold a connection.
    pub header_read_timeout: std::time::Duration,
    /// Connections served at once; further clients wait in the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            header_read_timeout: std::time::Duration::from_secs(10),
            max_connections: 4096,
        }
    }
}

/// How long a graceful shutdown waits for open connections (a status stream never ends).
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves, within `limits`; then lets open
/// connections finish their requests (up to 10 s). Handlers see the peer as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    // Open connections: told to finish (graceful shutdown) once the listener closes.
    let connections = crate::shutdown::Stages::new();
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            _ = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let (io, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = io.set_nodelay(true);
        let service =
            router
                .clone()
                .map_request(move |req: axum::http::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    req
                });
        let service = hyper_util::service::TowerToHyperService::new(service);
        connections.spawn(move |closed| async move {
            // HTTP/1.1 only (what the router speaks): hyper's own HTTP/1 connection starts the
            // header timer while it waits for a request, so an idle or silent connection is
            // closed too (the auto builder's protocol sniffing would wait without a limit).
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = closed => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(DRAIN, conn.as_mut()).await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    // Every connection finishes its request in flight (or is cut after the drain).
    connections
        .stop(DRAIN + std::time::Duration::from_secs(1))
        .await;
    Ok(())
}

/// The ops endpoints of a process whose work is not HTTP (projector, janitor, worker).
pub struct OpsServer {
    stages: crate::shutdown::Stages,
}

impl OpsServer {
    /// Binds `addr` and serves `/healthz`, `/readyz`, `/metrics` until [`OpsServer::stop`].
    pub async fn start(
        addr: std::net::SocketAddr,
        readiness: Readiness,
    ) -> std::io::Result<OpsServer> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let stages = crate::shutdown::Stages::new();
        stages.spawn(|stop| async move {
            if let Err(e) = serve(listener, router(readiness), HttpLimits::default(), stop).await {
                tracing::warn!(error = %e, "ops endpoints stopped");
            }
        });
        Ok(OpsServer { stages })
    }

    pub async fn stop(self) {
        self.stages
            .stop(DRAIN + std::time::Duration::from_secs(2))
            .await;
    }
}
