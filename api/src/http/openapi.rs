//! The API's contract, generated from the code: every `/api/v1` operation is declared by the
//! `#[utoipa::path]` on its handler and routed from that declaration (`utoipa-axum`), so a route
//! cannot go undocumented; request and response bodies are the handlers' own types. Served at
//! `/docs/openapi.json`; `api/openapi.json` is its snapshot (`make openapi` rewrites it, a test
//! compares them).

use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi, ToSchema};

pub use crate::error::ErrorBody;

/// 403 returned before any other processing to a request from a banned IP address on a path not
/// open to banned IPs.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccessDenied {
    #[schema(value_type = AccessDeniedError, inline)]
    pub error: &'static str,
    pub banned: bool,
    #[schema(example = "Your IP address has been banned for violating the community rules.")]
    pub message: &'static str,
}

impl AccessDenied {
    pub const BODY: AccessDenied = AccessDenied {
        error: "access_denied",
        banned: true,
        message: "Your IP address has been banned for violating the community rules.",
    };
}

/// A 403: refused by the endpoint (`Error`) or, from a banned IP, before any processing
/// (`AccessDenied`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum Forbidden {
    Error(ErrorBody),
    AccessDenied(AccessDenied),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NotReady {
    #[schema(value_type = NotReadyError, inline)]
    pub error: &'static str,
    #[schema(example = "unavailable: postgres, nats")]
    pub message: String,
    /// The dependencies that are down.
    pub down: Vec<String>,
}

/// One-value enums: how the document names a constant.
macro_rules! constant {
    ($name:ident, $value:literal) => {
        #[derive(Serialize, ToSchema)]
        #[allow(dead_code)]
        pub enum $name {
            #[serde(rename = $value)]
            Value,
        }
    };
}
pub(crate) use constant;

constant!(AccessDeniedError, "access_denied");
constant!(NotReadyError, "not_ready");
constant!(StatusOk, "ok");
constant!(StatusReady, "ready");

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Processing,
    Completed,
    Failed,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum PhoneCategory {
    Scam,
    Spam,
    Robocall,
    Harassment,
    Other,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum PhoneStatus {
    Dangerous,
    Reported,
    Unknown,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum PhoneReportStatus {
    Pending,
    Approved,
    Rejected,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum BanStatus {
    None,
    Temporary,
    Permanent,
    Vindicated,
}

/// `/healthz`'s body.
#[derive(Serialize, ToSchema)]
pub struct Live {
    #[schema(value_type = StatusOk, inline)]
    pub status: &'static str,
}

/// `/readyz`'s body when ready.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    #[schema(value_type = StatusReady, inline)]
    pub status: &'static str,
}

#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "ops",
    summary = "Liveness",
    security(()),
    responses((status = 200, description = "The process is up.", body = inline(Live)))
)]
#[allow(dead_code)]
fn healthz() {}

#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "ops",
    summary = "Readiness (Postgres and NATS reachable)",
    security(()),
    responses(
        (status = 200, description = "Ready.", body = inline(Ready)),
        (status = 503, description = "A dependency is down.", body = NotReady,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[allow(dead_code)]
fn readyz() {}

#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "ops",
    summary = "Prometheus metrics",
    description = "Open in development; with `METRICS_TOKEN` set it needs `Authorization: Bearer <METRICS_TOKEN>`, and in production without one it is closed.",
    security(()),
    responses((status = 200, description = "Prometheus text exposition format (`text/plain; version=0.0.4`).", body = String, content_type = "text/plain"))
)]
#[allow(dead_code)]
fn metrics() {}

#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "docsPage",
    tag = "ops",
    summary = "This API's documentation as a web page",
    security(()),
    responses((status = 200, description = "HTML page generated from this document", body = String, content_type = "text/html"))
)]
#[allow(dead_code)]
fn docs_page() {}

#[utoipa::path(
    get,
    path = "/docs/openapi.json",
    operation_id = "openapiDocument",
    tag = "ops",
    summary = "This OpenAPI document",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
#[allow(dead_code)]
fn openapi_document() {}

/// The document's frame: title, tags, security schemes, the operational endpoints.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "blacklist API",
        version = "1.0.0",
        description = "Voice scam analysis, phone-number reporting, and platform-user reports/bans. Errors are `{\"error\": \"<snake_case_code>\", \"message\": \"…\"}`. Ids are UUIDs; times are RFC 3339 except `bannedAt`, `reviewedAt`, `timestamp`, `lastUpdated` (milliseconds since the epoch). Lists take `limit` (default 50, max 500) and an opaque `cursor` and return `nextCursor` (null at the end). A request from a banned IP gets 403 `AccessDenied` before any other processing, except on `/report/blacklist`, `/report/check-ban`, `/report/appeal`, `/report/my-data`, `/report/blacklist/{userId}`, the admin endpoints (`/admin/*`, `/report/pending`, `/report/review/*`, `/report/stats`, `/report/reports`) and the operational endpoints. Public writes require a Cloudflare Turnstile token in `turnstileToken` (403 `captcha_failed`) when TURNSTILE_SECRET_KEY is configured.",
        license(name = "MIT")
    ),
    servers((url = "/api/v1")),
    tags(
        (name = "admin", description = "Admin account and sessions"),
        (name = "workers", description = "Analysis workers"),
        (name = "queue", description = "Voice task queue administration"),
        (name = "voice", description = "Voice recording analysis"),
        (name = "phones", description = "Phone number reporting and moderation"),
        (name = "reports", description = "User reports, bans and the blacklist. Every `/report/*` path also answers at the root (`/report/user`, `/report/check-ban`, …), where the reporting system's original document puts them."),
        (name = "appeals", description = "Appeals of user bans and disputes of listed phone numbers"),
        (name = "privacy", description = "Personal data: the right of access"),
        (name = "platforms", description = "Host platforms: registration, and the ban feed they follow with their API key"),
        (name = "ops", description = "Operational endpoints")
    ),
    paths(healthz, readyz, metrics, docs_page, openapi_document),
    components(schemas(ErrorBody, AccessDenied, NotReady, TaskStatus, PhoneCategory, PhoneStatus, PhoneReportStatus, BanStatus)),
    modifiers(&SecuritySchemes)
)]
struct Frame;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            "adminBearer",
            bearer("Admin access token (HS256 JWT, audience `blacklist-admin`) from `POST /admin/login`. Short-lived (default 15 min), revocable via `/admin/logout`."),
        );
        components.add_security_scheme(
            "platformKey",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A host platform's API key (`blp_…`), from `POST /admin/platforms`; revocable."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "sessionBearer",
            bearer("Host platform's session JWT (HS256 with SESSION_JWT_SECRET, or RS256/EdDSA with SESSION_JWT_PUBLIC_KEY). Claims: `sub` (user id, a UUID), `exp`, optional `name`, `picture`, `video`."),
        );
    }
}

/// The whole document: the `/api/v1` operations as routed, then the operational endpoints
/// (served at the root, which their `servers` say).
pub fn document() -> utoipa::openapi::OpenApi {
    let limit = std::time::Duration::from_secs(1);
    let (_, routed) = super::api_routes(limit, limit).split_for_parts();
    let mut doc = Frame::openapi();
    let root = std::mem::take(&mut doc.paths.paths);
    doc.merge(routed);
    for (path, mut item) in root {
        let mut server = Server::new("/");
        if !path.starts_with("/docs") {
            server.description =
                Some("Operational endpoints are served at the root, not under /api/v1.".into());
        }
        item.servers = Some(vec![server]);
        doc.paths.paths.insert(path, item);
    }
    doc
}

#[cfg(test)]
mod tests {
    /// `api/openapi.json` is the document the code generates (a snapshot: a change to the
    /// contract shows in review). `UPDATE_OPENAPI=1` rewrites it (`make openapi`).
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let generated = crate::http::docs::openapi_json();
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        if let Some(out) = std::env::var_os("UPDATE_OPENAPI") {
            let out = if out == "1" { path.into() } else { out };
            std::fs::write(out, generated).expect("writable");
            return;
        }
        let committed = std::fs::read_to_string(path).expect("api/openapi.json");
        assert!(
            committed == generated,
            "api/openapi.json is not the generated document: run `make openapi` and review the diff"
        );
    }
}
