//! Host platforms: `/admin/platforms` (register with a key shown once, list, revoke) and what a
//! platform calls with its key: the ban feed, as a page (`/platform/bans`) or live
//! (`/platform/bans/stream`, server-sent events).

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{display_name, Json, Query, RequestId};
use super::openapi::ErrorBody;
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::ban_feed::{self, BanDecision};
use crate::commands::{execute, CommandError};
use crate::domain::platform::{new_key, PlatformCommand, PlatformError};
use crate::error::{ApiError, Result};
use crate::platform_auth::HostPlatform;

#[derive(Deserialize, ToSchema)]
pub struct RegisterPlatformRequest {
    /// The platform's name, as admins see it (1 to 100 characters).
    #[schema(value_type = String, required = true, min_length = 1, max_length = 100)]
    name: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformRegistered {
    pub platform_id: Uuid,
    pub name: String,
    /// Shown once; never expires; revocable. Send it as `Authorization: Bearer <apiKey>`.
    pub api_key: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlatformItem {
    pub platform_id: Uuid,
    pub name: String,
    pub registered_at: DateTime<Utc>,
    /// The admin who registered it.
    pub registered_by: String,
    /// When its key was revoked; null while it works.
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct PlatformList {
    pub items: Vec<PlatformItem>,
}

#[utoipa::path(
    post,
    path = "/admin/platforms",
    operation_id = "registerPlatform",
    tag = "platforms",
    summary = "Register a host platform",
    description = "The answer carries the platform's API key, shown once. The platform sends it as `Authorization: Bearer <apiKey>` on every `/platform/*` endpoint.",
    security(("adminBearer" = [])),
    request_body(content = RegisterPlatformRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The platform and its API key (shown once).", body = PlatformRegistered),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_name`, `invalid_body`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Json(body): Json<RegisterPlatformRequest>,
) -> Result<impl IntoResponse> {
    let name = display_name(body.name)?;
    let platform_id = Uuid::new_v4();
    let api_key = new_key(platform_id);
    let cmd = PlatformCommand::Register {
        name: name.clone(),
        key_hash: crate::domain::credential::hash(&api_key),
        by: admin.username.clone(),
    };
    let ctx = rid.context(format!("admin:{}", admin.username));
    execute(&s.platforms, &platform_id.to_string(), cmd, &ctx).await?;
    tracing::info!(%platform_id, name, "platform registered");
    Ok((
        StatusCode::CREATED,
        axum::Json(PlatformRegistered {
            platform_id,
            name,
            api_key,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/platforms",
    operation_id = "listPlatforms",
    tag = "platforms",
    summary = "List host platforms",
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "Every registered platform, oldest first.", body = PlatformList),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list(State(s): State<AppState>, _admin: AdminSession) -> Result<impl IntoResponse> {
    let rows = sqlx::query("SELECT * FROM platforms ORDER BY registered_at, platform_id")
        .fetch_all(&s.pool)
        .await?;
    let items = rows
        .iter()
        .map(|r| PlatformItem {
            platform_id: r.get("platform_id"),
            name: r.get("name"),
            registered_at: r.get("registered_at"),
            registered_by: r.get("registered_by"),
            revoked_at: r.get("revoked_at"),
        })
        .collect();
    Ok(axum::Json(PlatformList { items }))
}

#[utoipa::path(
    delete,
    path = "/admin/platforms/{id}",
    operation_id = "revokePlatform",
    tag = "platforms",
    summary = "Revoke a host platform's API key",
    description = "Every later request with the key is 401 `invalid_key`; an open ban stream ends at its next decision. Revoking twice is harmless.",
    security(("adminBearer" = [])),
    params(("id" = Uuid, Path, description = "The platform id (a malformed id is 404).")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(platform = %raw_id))]
pub async fn revoke(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Path(raw_id): Path<String>,
) -> Result<StatusCode> {
    let id = Uuid::parse_str(&raw_id).map_err(|_| ApiError::NotFound("no such platform".into()))?;
    let cmd = PlatformCommand::Revoke {
        by: admin.username.clone(),
    };
    let ctx = rid.context(format!("admin:{}", admin.username));
    match execute(&s.platforms, &id.to_string(), cmd, &ctx).await {
        Ok(_) | Err(CommandError::Domain(PlatformError::AlreadyRevoked)) => {}
        Err(e) => return Err(e.into()),
    }
    tracing::info!(platform = %id, "platform revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Largest page of decisions.
pub const MAX_FEED_PAGE: usize = 500;
const DEFAULT_FEED_PAGE: usize = 100;

#[derive(Deserialize)]
pub struct FeedQuery {
    since: Option<String>,
    limit: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BanPage {
    /// Decisions after `since`, oldest first.
    pub items: Vec<BanDecision>,
    /// Ask with `since=<nextCursor>` for what comes after (the end of the log when this page
    /// reached it; the same cursor again when nothing new happened).
    #[schema(example = "1042")]
    pub next_cursor: String,
}

#[utoipa::path(
    get,
    path = "/platform/bans",
    operation_id = "listBanDecisions",
    tag = "platforms",
    summary = "Ban decisions since a cursor (for platforms that poll)",
    description = "Decisions on platform users in the order they were taken: `UserAutoBanned` (4 unique reporters: a temporary ban of the user and every IP seen for them) and `BanReviewed` (an admin made it permanent or vindicated the user). Start with `since=0` for the whole history, or with the `nextCursor` of the last page.",
    security(("platformKey" = [])),
    params(
        ("since" = Option<String>, Query, description = "A cursor: the `cursor` of a decision or a page's `nextCursor` (default 0, the beginning)."),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Page size, 1 to 500 (default 100).")
    ),
    responses(
        (status = 200, description = "A page of decisions.", body = BanPage),
        (status = 400, description = "The cursor is not one this API issued, or is ahead of the log. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked platform key. Codes: `missing_key`, `invalid_key`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_limit`, `invalid_query`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(platform = %platform.id))]
pub async fn bans(
    State(s): State<AppState>,
    platform: HostPlatform,
    Query(q): Query<FeedQuery>,
) -> Result<impl IntoResponse> {
    let since = match q.since.as_deref() {
        None | Some("") => 0,
        Some(raw) => ban_feed::parse_cursor(raw)?,
    };
    let limit = match q.limit.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        None => DEFAULT_FEED_PAGE,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_FEED_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::unprocessable(
                    "invalid_limit",
                    format!("limit must be a number from 1 to {MAX_FEED_PAGE}"),
                )
            })?,
    };
    let (items, next) = ban_feed::page(&s.js, since, limit).await?;
    Ok(axum::Json(BanPage {
        items,
        next_cursor: next.to_string(),
    }))
}

#[utoipa::path(
    get,
    path = "/platform/bans/stream",
    operation_id = "streamBanDecisions",
    tag = "platforms",
    summary = "Ban decisions as they are taken (server-sent events)",
    description = "First an `event: ready` whose `id` is where the log ends now (or the cursor resumed from); then one `event: ban` per decision, `id` its cursor and `data` the `BanDecision` JSON, within a second of the command that took it. Reconnect with `Last-Event-ID` (browsers' EventSource does it by itself) or `?since=` to resume exactly after the last event received, across api restarts: nothing is missed or repeated. Keep-alive comments are sent in between.",
    security(("platformKey" = [])),
    params(
        ("since" = Option<String>, Query, description = "Resume after this cursor (`Last-Event-ID` wins when both are given); without either, only decisions from now on."),
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received.")
    ),
    responses(
        (status = 200, description = "`text/event-stream`: `event: ready`, then `event: ban` with `id: <cursor>` and `data: <BanDecision JSON>`.", body = String, content_type = "text/event-stream", example = "event: ready\nid: 1041\ndata: {}\n\nevent: ban\nid: 1042\ndata: {\"cursor\":\"1042\",\"kind\":\"UserAutoBanned\",\"userId\":\"6f1c…\",\"banStatus\":\"temporary\",…}\n\n"),
        (status = 400, description = "The cursor is not one this API issued, or is ahead of the log. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked platform key. Codes: `missing_key`, `invalid_key`.", body = ErrorBody),
        (status = 429, description = "The platform already holds 8 open streams on this instance. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(platform = %platform.id))]
pub async fn stream(
    State(s): State<AppState>,
    platform: HostPlatform,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Result<Sse<impl futures::Stream<Item = std::result::Result<Event, Infallible>>>> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .or(q.since.as_deref().filter(|v| !v.trim().is_empty()));
    let since = resume.map(ban_feed::parse_cursor).transpose()?;
    let slot = s
        .ban_streams
        .open(platform.id)
        .ok_or(ApiError::RateLimited {
            retry_after_secs: 5,
        })?;
    let (from, decisions) = ban_feed::follow(&s.js, since).await?;
    // A revoked key's stream ends at its next decision.
    let (store, key) = (s.platform_store.clone(), platform.key.clone());
    let decisions = decisions.take_while(move |_| {
        let (store, key) = (store.clone(), key.clone());
        async move {
            use cqrs_es::{AggregateContext, EventStore};
            match store.load_aggregate(&platform.id.to_string()).await {
                Ok(mut ctx) => ctx.aggregate().accepts(&key),
                // Unreadable for a moment: keep the stream; the next decision checks again.
                Err(_) => true,
            }
        }
    });
    metrics::gauge!("platform_ban_streams").increment(1.0);
    let open = (StreamGauge, slot);
    let ready = futures::stream::once(async move {
        Ok(Event::default()
            .event("ready")
            .id(from.to_string())
            .data("{}"))
    });
    let bans = decisions.map(move |d| {
        let _open = &open;
        Ok(Event::default()
            .event("ban")
            .id(d.cursor.clone())
            .json_data(&d)
            .unwrap_or_else(|_| Event::default().comment("unserializable decision")))
    });
    Ok(Sse::new(ready.chain(bans)).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize, ToSchema)]
pub struct WebhookRequest {
    /// Where decisions are POSTed: https, a public host (not loopback or private), no
    /// credentials, at most 2048 characters.
    #[schema(value_type = String, required = true, example = "https://chat.example/hooks/blacklist")]
    url: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    /// Where decisions are POSTed; null when no webhook is set.
    #[schema(required = true)]
    pub url: Option<String>,
    /// The secret `Blacklist-Signature` is computed with (HMAC-SHA256 of `<t>.<body>`).
    pub signing_secret: String,
    /// Decisions after this cursor are delivered (where the log ended when the webhook was set).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_cursor: Option<String>,
}

#[utoipa::path(
    put,
    path = "/platform/webhook",
    operation_id = "setWebhook",
    tag = "platforms",
    summary = "Receive decisions by webhook",
    description = "From now on each decision (the same `BanDecision` as the stream) is POSTed to `url` as JSON, one at a time and oldest first (so the order per user holds), with `Blacklist-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(signingSecret, \"<t>.<body>\")>`, `Blacklist-Event-Id: <cursor>` and `Blacklist-Event-Kind`. Verify the signature, refuse a `t` more than 5 minutes old, and treat a repeated `Blacklist-Event-Id` as done. A 2xx answer is a delivery; anything else is retried after 1 s, 2 s, 4 s … (at most an hour apart) for 24 hours, then abandoned and the next decision follows. Every attempt is an event (`WebhookAttempted`) admins see at `GET /admin/platforms/{id}/deliveries`. Setting it again changes the URL and keeps the position.",
    security(("platformKey" = [])),
    request_body(content = WebhookRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Set.", body = Webhook),
        (status = 401, description = "Missing, unknown or revoked platform key. Codes: `missing_key`, `invalid_key`.", body = ErrorBody),
        (status = 422, description = "Codes: `invalid_webhook_url` (not https outside development, credentials, a host that does not resolve or resolves to a loopback, private or reserved address), `invalid_body`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(platform = %platform.id))]
pub async fn set_webhook(
    State(s): State<AppState>,
    platform: HostPlatform,
    rid: RequestId,
    Json(body): Json<WebhookRequest>,
) -> Result<impl IntoResponse> {
    let raw = body.url.unwrap_or_default();
    let url = crate::webhooks::check_target(&raw, s.webhook_targets).await?;
    let from_cursor = ban_feed::end(&s.js).await?;
    let cmd = PlatformCommand::SetWebhook {
        url: url.to_string(),
        from_cursor,
    };
    let ctx = rid.context(format!("platform:{}", platform.id));
    execute(&s.platforms, &platform.id.to_string(), cmd, &ctx).await?;
    Ok(axum::Json(Webhook {
        url: Some(url.to_string()),
        signing_secret: crate::webhooks::signing_secret(&s.webhook_key, platform.id),
        from_cursor: Some(from_cursor.to_string()),
    }))
}

#[utoipa::path(
    get,
    path = "/platform/webhook",
    operation_id = "getWebhook",
    tag = "platforms",
    summary = "The platform's webhook and its signing secret",
    security(("platformKey" = [])),
    responses(
        (status = 200, description = "The webhook (url null when none is set) and the signing secret.", body = Webhook),
        (status = 401, description = "Missing, unknown or revoked platform key. Codes: `missing_key`, `invalid_key`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(platform = %platform.id))]
pub async fn get_webhook(
    State(s): State<AppState>,
    platform: HostPlatform,
) -> Result<impl IntoResponse> {
    Ok(axum::Json(Webhook {
        url: platform.webhook.clone(),
        signing_secret: crate::webhooks::signing_secret(&s.webhook_key, platform.id),
        from_cursor: None,
    }))
}

#[utoipa::path(
    delete,
    path = "/platform/webhook",
    operation_id = "removeWebhook",
    tag = "platforms",
    summary = "Stop receiving decisions by webhook",
    security(("platformKey" = [])),
    responses(
        (status = 204, description = "Removed."),
        (status = 401, description = "Missing, unknown or revoked platform key. Codes: `missing_key`, `invalid_key`.", body = ErrorBody),
        (status = 409, description = "Codes: `no_webhook`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(platform = %platform.id))]
pub async fn remove_webhook(
    State(s): State<AppState>,
    platform: HostPlatform,
    rid: RequestId,
) -> Result<StatusCode> {
    let ctx = rid.context(format!("platform:{}", platform.id));
    execute(
        &s.platforms,
        &platform.id.to_string(),
        PlatformCommand::RemoveWebhook,
        &ctx,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// The decision's cursor.
    pub cursor: String,
    pub user_id: String,
    /// 1 for the first try of this decision, then 2, 3 …
    pub attempt: i32,
    /// `delivered`, `failed` (retried) or `abandoned` (24 hours of failures).
    pub outcome: String,
    /// The receiver's HTTP status, when it answered.
    #[schema(required = true)]
    pub status: Option<i32>,
    /// Why it failed.
    #[schema(required = true)]
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    /// The newest 100 attempts, newest first.
    pub items: Vec<DeliveryAttempt>,
}

#[utoipa::path(
    get,
    path = "/admin/platforms/{id}/deliveries",
    operation_id = "listWebhookDeliveries",
    tag = "platforms",
    summary = "A platform's webhook attempts",
    security(("adminBearer" = [])),
    params(("id" = Uuid, Path, description = "The platform id (a malformed id is 404).")),
    responses(
        (status = 200, description = "The newest attempts and their outcomes.", body = DeliveryList),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(platform = %raw_id))]
pub async fn deliveries(
    State(s): State<AppState>,
    _admin: AdminSession,
    Path(raw_id): Path<String>,
) -> Result<impl IntoResponse> {
    let id = Uuid::parse_str(&raw_id).map_err(|_| ApiError::NotFound("no such platform".into()))?;
    let rows = sqlx::query(
        "SELECT * FROM webhook_attempts WHERE platform_id = $1 ORDER BY at DESC, cursor DESC, attempt DESC LIMIT 100",
    )
    .bind(id)
    .fetch_all(&s.pool)
    .await?;
    let items = rows
        .iter()
        .map(|r| DeliveryAttempt {
            cursor: r.get::<i64, _>("cursor").to_string(),
            user_id: r.get("user_id"),
            attempt: r.get("attempt"),
            outcome: r.get("outcome"),
            status: r.get("status"),
            error: r.get("error"),
            at: r.get("at"),
        })
        .collect();
    Ok(axum::Json(DeliveryList { items }))
}

/// Counts open ban streams (`platform_ban_streams`) for as long as one lives.
struct StreamGauge;

impl Drop for StreamGauge {
    fn drop(&mut self) {
        metrics::gauge!("platform_ban_streams").decrement(1.0);
    }
}
