//! HTTP: routes, request metrics, request ids, body limits.

pub mod admin;
mod admin_tasks;
mod appeals;
mod disputes;
pub mod docs;
pub mod extract;
mod ip_bans;
mod my_data;
pub mod openapi;
pub mod phones;
mod platforms;
pub mod reports;
mod tasks;
mod workers;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use common::ops::Readiness;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::AppState;
use crate::config::MetricsAccess;
use crate::error;

pub use common::ops::REQUEST_ID;

/// What one request may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Whole request, body included, to the start of the response (408 after).
    pub request_timeout: std::time::Duration,
    /// The same for a relayed upload.
    pub upload_timeout: std::time::Duration,
}

/// 408 when a request (body included) takes longer than `limit` to answer.
fn timeout(limit: std::time::Duration) -> tower_http::timeout::TimeoutLayer {
    tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limit,
    )
}

pub fn router(state: AppState, readiness: Readiness, limits: Limits) -> Router {
    let max_body_bytes = limits.max_body_bytes;
    let (api, _) = api_routes(limits.request_timeout, limits.upload_timeout).split_for_parts();
    let (seed_paths, _) = report_routes()
        .layer(timeout(limits.request_timeout))
        .split_for_parts();
    Router::new()
        .nest("/api/v1", api)
        .merge(seed_paths)
        .fallback(error::not_found)
        .with_state(state.clone())
        .merge(common::ops::router(readiness))
        .route("/docs", get(docs::page))
        .route("/docs/openapi.json", get(docs::openapi))
        .merge(web_pages(state.clone()).layer(timeout(limits.request_timeout)))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn(track))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        // A client's request id is kept only when short and plain (it is echoed, logged and
        // stored as the events' correlationId); otherwise it is replaced by a fresh one.
        .layer(middleware::from_fn(sanitize_request_id))
        .layer(middleware::from_fn_with_state(
            Arc::new(SecurityHeaders::new(&state)),
            security_headers,
        ))
        .layer(middleware::from_fn_with_state(
            state.metrics_access.clone(),
            guard_metrics,
        ))
        .layer(cors(&state.web.host_platform_origins))
        // Outermost: a banned IP is refused before any other processing (counted, not traced).
        .layer(middleware::from_fn_with_state(
            state,
            ip_bans::refuse_banned_ips,
        ))
}

/// `/report/*`: under `/api/v1`, and also at the root, where the seed's document (the reporting
/// system host platforms were written against) puts them.
pub fn report_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reports::report_user))
        .routes(routes!(reports::pending))
        .routes(routes!(reports::review))
        .routes(routes!(reports::blacklist))
        .routes(routes!(reports::blacklist_entry))
        .routes(routes!(reports::check_ban))
        .routes(routes!(reports::stats))
        .routes(routes!(reports::reports))
        .routes(routes!(reports::status))
        .routes(routes!(appeals::appeal))
        .routes(routes!(my_data::mine))
}

/// The `/api/v1` operations, each routed from its `#[utoipa::path]` (which documents it), with
/// their time limits.
pub fn api_routes(
    request_timeout: std::time::Duration,
    upload_timeout: std::time::Duration,
) -> OpenApiRouter<AppState> {
    // Streamed to the store with its own, longer time limit; every check happens before a byte
    // of the body is read.
    let upload = OpenApiRouter::new()
        .routes(routes!(tasks::relay_upload))
        .layer(timeout(upload_timeout));
    OpenApiRouter::new()
        .routes(routes!(admin::seed))
        .routes(routes!(admin::login))
        .routes(routes!(admin::logout))
        .routes(routes!(admin::change_password))
        .routes(routes!(tasks::presign_upload))
        .routes(routes!(tasks::submit))
        .routes(routes!(tasks::status))
        .routes(routes!(tasks::events))
        .routes(routes!(tasks::recording))
        .routes(routes!(phones::report))
        .routes(routes!(phones::lookup))
        .routes(routes!(phones::list))
        .routes(routes!(phones::approve))
        .routes(routes!(phones::reject))
        .routes(routes!(phones::delete))
        .routes(routes!(admin_tasks::list))
        .routes(routes!(admin_tasks::retry_all_failed))
        .routes(routes!(admin_tasks::retry))
        .routes(routes!(admin_tasks::reanalyse))
        .routes(routes!(admin_tasks::reanalyses))
        .routes(routes!(admin_tasks::stats))
        .routes(routes!(workers::register, workers::list))
        .routes(routes!(workers::revoke))
        .routes(routes!(platforms::register, platforms::list))
        .routes(routes!(platforms::revoke))
        .routes(routes!(platforms::bans))
        .routes(routes!(platforms::stream))
        .routes(routes!(
            platforms::set_webhook,
            platforms::get_webhook,
            platforms::remove_webhook
        ))
        .routes(routes!(platforms::deliveries))
        .routes(routes!(appeals::list))
        .routes(routes!(appeals::decide))
        .routes(routes!(disputes::dispute))
        .routes(routes!(disputes::list))
        .routes(routes!(disputes::decide))
        .routes(routes!(my_data::subject))
        .merge(report_routes())
        .layer(timeout(request_timeout))
        .merge(upload)
}

/// Longest client-supplied `X-Request-Id` kept.
const MAX_REQUEST_ID: usize = 64;

async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let plain = |v: &axum::http::HeaderValue| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= MAX_REQUEST_ID
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
    };
    let headers = req.headers_mut();
    if headers.get_all(&REQUEST_ID).iter().count() > 1
        || headers.get(&REQUEST_ID).is_some_and(|v| !plain(v))
    {
        headers.remove(&REQUEST_ID);
    }
    next.run(req).await
}

/// The browser-side policies every response carries.
struct SecurityHeaders {
    /// Pages: scripts and frames only from here (and Turnstile), never framed.
    page_csp: axum::http::HeaderValue,
    /// `/ban-notice`: the same, framed only by the host platforms.
    embed_csp: axum::http::HeaderValue,
}

impl SecurityHeaders {
    fn new(state: &AppState) -> Self {
        let origins = state
            .web
            .host_platform_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty() && !o.contains([';', ',', '\'', '"', ' ']))
            .collect::<Vec<_>>()
            .join(" ");
        // Uploads and recordings go to the object store's origin (presigned URLs).
        let store = state.storage_origin.as_deref().unwrap_or("");
        let base = format!(
            "default-src 'self'; script-src 'self' https://challenges.cloudflare.com; \
             frame-src https://challenges.cloudflare.com; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data: https:; media-src 'self' blob: https: {store}; \
             connect-src 'self' {store}; object-src 'none'; base-uri 'none'; form-action 'self'"
        );
        let header = |csp: String| {
            axum::http::HeaderValue::from_str(&csp)
                .unwrap_or_else(|_| axum::http::HeaderValue::from_static("default-src 'self'"))
        };
        SecurityHeaders {
            page_csp: header(format!("{base}; frame-ancestors 'none'")),
            embed_csp: header(format!("{base}; frame-ancestors 'self' {origins}")),
        }
    }
}

async fn security_headers(
    State(policy): State<Arc<SecurityHeaders>>,
    req: Request,
    next: Next,
) -> Response {
    use axum::http::{header, HeaderValue};
    let embed = req.uri().path() == "/ban-notice";
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Task pages carry their id in the URL: never send it elsewhere.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if embed {
        h.insert(header::CONTENT_SECURITY_POLICY, policy.embed_csp.clone());
    } else {
        h.insert(header::CONTENT_SECURITY_POLICY, policy.page_csp.clone());
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    resp
}

async fn guard_metrics(State(access): State<MetricsAccess>, req: Request, next: Next) -> Response {
    if req.uri().path() != "/metrics" {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let allowed = match &access {
        MetricsAccess::Open => true,
        MetricsAccess::Token(t) => admin::constant_time_eq(given.as_bytes(), t.as_bytes()),
        MetricsAccess::Closed => false,
    };
    match allowed {
        true => next.run(req).await,
        false => error::ApiError::Unauthorized(
            "metrics_token_required",
            "/metrics needs Authorization: Bearer <METRICS_TOKEN>".into(),
        )
        .into_response(),
    }
}

fn web_pages(state: AppState) -> Router {
    use crate::pages;
    Router::new()
        .route("/", get(pages::home))
        .route("/check", get(pages::check))
        .route("/check/{task_id}", get(pages::check_task))
        .route("/numbers", get(pages::numbers))
        .route("/blacklist", get(pages::blacklist))
        .route("/blacklist/{user_id}", get(pages::blacklist_user))
        .route("/ban-notice", get(pages::ban_notice))
        .route("/privacy", get(pages::privacy))
        .route("/terms", get(pages::terms))
        .route("/admin", get(pages::admin))
        .route("/static/{file}", get(pages::asset))
        .with_state(state)
}

/// Host platforms' web apps call the API from their users' browsers (reports, ban checks).
fn cors(origins: &[String]) -> tower_http::cors::CorsLayer {
    use axum::http::{header, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim())
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
}

/// Request count and latency per route and status.
async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    resp
}
