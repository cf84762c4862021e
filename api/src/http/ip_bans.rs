//! The IP-ban check: every request from a banned address (or IPv6 network) is refused before
//! any other processing, except the paths a banned user may still reach.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::app::AppState;
use crate::client_ip::{resolve, BannedIp, ClientIp};

/// Paths a banned IP may still reach (API.md): the public blacklist, the ban check, the appeal, admin
/// endpoints (`/admin/*` and the admin-only `/report/*` ones, so a moderator behind a banned
/// address can still review) and the operational ones.
fn open_to_banned_ips(path: &str) -> bool {
    // The seed's paths (`/report/*` at the root) are the same endpoints.
    let aliased;
    let path = if path.starts_with("/report/") {
        aliased = format!("/api/v1{path}");
        aliased.as_str()
    } else {
        path
    };
    matches!(
        path,
        "/api/v1/report/blacklist"
            | "/api/v1/report/check-ban"
            | "/api/v1/report/appeal"
            | "/api/v1/report/my-data"
            | "/api/v1/report/pending"
            | "/api/v1/report/stats"
            | "/api/v1/report/reports"
            | "/healthz"
            | "/readyz"
            | "/metrics"
    ) || path.starts_with("/api/v1/admin/")
        // Host platforms' servers, authenticated by their API key.
        || path.starts_with("/api/v1/platform/")
        || path.starts_with("/api/v1/report/review/")
        || path.starts_with("/api/v1/report/blacklist/")
        || path.starts_with("/blacklist/")
        || path.starts_with("/docs")
        // A banned user still sees why: the ban notice, the public blacklist, their assets.
        || matches!(path, "/blacklist" | "/ban-notice" | "/admin" | "/privacy" | "/terms")
        || path.starts_with("/static/")
}

/// Refuses requests from banned IPs before any other processing: one hash-set probe.
pub async fn refuse_banned_ips(
    State(s): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = resolve(req.extensions(), req.headers(), &s.trusted_proxies);
    req.extensions_mut().insert(ClientIp(ip));
    if !open_to_banned_ips(req.uri().path()) && s.banned_ips.contains_group(&BannedIp(ip)) {
        s.evasion.record();
        return (
            StatusCode::FORBIDDEN,
            Json(super::openapi::AccessDenied::BODY),
        )
            .into_response();
    }
    next.run(req).await
}
