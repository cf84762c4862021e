//! HTTP: routes, request metrics, request ids, body limits.

pub mod admin;
mod admin_tasks;
pub mod docs;
pub mod extract;
mod ip_bans;
pub mod paging;
pub mod phones;
pub mod reports;
mod tasks;
mod workers;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use common::ops::Readiness;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::error;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What one request may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
    /// Whole request, body included, to the start of the response (408 after).
    pub request_timeout: std::time::Duration,
    /// The same for a relayed upload.
    pub upload_timeout: std::time::Duration,
}

pub fn router(state: AppState, readiness: Readiness, limits: Limits) -> Router {
    let max_body_bytes = limits.max_body_bytes;
    let timeout = |d| {
        tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            d,
        )
    };
    let api = Router::new()
        .route("/admin/seed", post(admin::seed))
        .route("/admin/login", post(admin::login))
        .route("/admin/logout", post(admin::logout))
        .route("/admin/password", post(admin::change_password))
        .route("/client/uploads/presigned-url", post(tasks::presign_upload))
        .route("/client/tasks", post(tasks::submit))
        .route("/client/tasks/{task_id}", get(tasks::status))
        .route("/client/tasks/{task_id}/events", get(tasks::events))
        .route("/client/tasks/{task_id}/recording", get(tasks::recording))
        .route("/client/phones/report", post(phones::report))
        .route("/client/phones/{phone_number}", get(phones::lookup))
        .route("/admin/phones", get(phones::list))
        .route("/admin/phones/{id}/approve", post(phones::approve))
        .route("/admin/phones/{id}/reject", post(phones::reject))
        .route("/admin/phones/{id}", axum::routing::delete(phones::delete))
        .route("/admin/tasks", get(admin_tasks::list))
        .route(
            "/admin/tasks/retry-all-failed",
            post(admin_tasks::retry_all_failed),
        )
        .route("/admin/tasks/{id}/retry", post(admin_tasks::retry))
        .route("/admin/tasks/reanalyse", post(admin_tasks::reanalyse))
        .route("/admin/tasks/reanalyses", get(admin_tasks::reanalyses))
        .route("/admin/queue/stats", get(admin_tasks::stats))
        .route("/admin/workers", post(workers::register).get(workers::list))
        .route(
            "/admin/workers/{id}",
            axum::routing::delete(workers::revoke),
        )
        .route("/report/user", post(reports::report_user))
        .route("/report/pending", get(reports::pending))
        .route("/report/review/{user_id}", post(reports::review))
        .route("/report/blacklist", get(reports::blacklist))
        .route("/report/check-ban", get(reports::check_ban))
        .route("/report/stats", get(reports::stats))
        .route("/report/reports", get(reports::reports))
        .layer(timeout(limits.request_timeout))
        // Streamed to the store with its own, longer time limit; every check happens before
        // a byte of the body is read.
        .route(
            "/client/uploads/{upload_id}/content",
            axum::routing::put(tasks::relay_upload).layer(timeout(limits.upload_timeout)),
        );
    Router::new()
        .nest("/api/v1", api)
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

/// Who may read `/metrics` on the api's public port.
#[derive(Clone)]
pub enum MetricsAccess {
    /// Anyone (development, no `METRICS_TOKEN`).
    Open,
    /// `Authorization: Bearer <METRICS_TOKEN>`.
    Token(Arc<str>),
    /// Nobody (production without `METRICS_TOKEN`).
    Closed,
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
        .route("/ban-notice", get(pages::ban_notice))
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
