//! Appeals of user bans: the banned user appeals once per ban (`POST /report/appeal`, reachable
//! from banned IPs), admins work through a queue (`GET /admin/appeals`) and uphold or overturn
//! (`POST /admin/appeals/{id}/decision`; overturn = vindicate, with the shared-IP rule). The
//! outcome shows on the ban notice (`GET /report/check-ban` → `appeal`) and, where the user gave
//! an address, by email.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use cqrs_es::{AggregateContext, EventStore};
use events::platform_user::{AppealOutcome, PlatformUserEvent};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{contact_email, limited_session_user, optional_text, Json, Query, RequestId};
use super::openapi::{BanStatus, ErrorBody};
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::client_ip::ClientIp;
use crate::commands::execute_returning;
use crate::domain::platform_user::PlatformUserCommand;
use crate::error::{ApiError, Result};
use crate::paging::{split_page, PageQuery};
use crate::queries::ms;

/// Longest appeal text.
pub const MAX_APPEAL_CHARS: usize = 4000;
/// Longest note an admin leaves with a decision (shown to the user).
pub const MAX_NOTE_CHARS: usize = 1000;

/// A queue's `status` filter: `pending` by default, `all` for none; 422 `invalid_status` else.
pub fn status_filter(raw: Option<&str>) -> Result<Option<String>> {
    match raw.map(str::trim).unwrap_or("pending") {
        "all" => Ok(None),
        st @ ("pending" | "upheld" | "overturned") => Ok(Some(st.to_owned())),
        _ => Err(ApiError::unprocessable(
            "invalid_status",
            "status must be pending, upheld, overturned or all",
        )),
    }
}

/// `uphold` or `overturn`; 422 `invalid_decision` else.
pub fn outcome_of(raw: Option<&str>) -> Result<AppealOutcome> {
    match raw.map(str::trim) {
        Some("uphold") => Ok(AppealOutcome::Upheld),
        Some("overturn") => Ok(AppealOutcome::Overturned),
        _ => Err(ApiError::unprocessable(
            "invalid_decision",
            "decision must be \"uphold\" or \"overturn\"",
        )),
    }
}

/// A page of a decision queue (`ban_appeals`, `phone_disputes`): `select` names the rows as `q`
/// (with any joins) and `id` their key column; oldest first by `q.created_at`, filtered by the
/// `status` query parameter.
pub async fn queue_page(
    pool: &PgPool,
    select: &str,
    id: &str,
    query: &AppealQuery,
) -> Result<(Vec<sqlx::postgres::PgRow>, Option<String>)> {
    let status = status_filter(query.status.as_deref())?;
    let limit = query.page.limit()?;
    let after: Option<(i64, Uuid)> = query.page.cursor()?;
    let rows = sqlx::query(&format!(
        "{select}
          WHERE ($1::text IS NULL OR q.status = $1)
            AND ($2::bigint IS NULL
                 OR (EXTRACT(EPOCH FROM q.created_at) * 1000000)::bigint > $2
                 OR ((EXTRACT(EPOCH FROM q.created_at) * 1000000)::bigint = $2 AND q.{id} > $3))
          ORDER BY q.created_at, q.{id}
          LIMIT $4"
    ))
    .bind(status)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1).unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(pool)
    .await?;
    Ok(split_page(rows, limit, |r| {
        let at: DateTime<Utc> = r.get("created_at");
        (at.timestamp_micros(), r.get::<Uuid, _>(id))
    }))
}

/// The IPs of `user` (as their history has them, not a read model that may lag) that another
/// banned user also holds: a vindication keeps them banned.
pub async fn shared_ips(s: &AppState, user: &str) -> Result<BTreeSet<String>> {
    let mut ctx = s
        .platform_user_store
        .load_aggregate(user)
        .await
        .map_err(ApiError::from_aggregate)?;
    let mine: Vec<String> = ctx.aggregate().ips().map(str::to_owned).collect();
    let ips: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT ip FROM ip_bans WHERE user_id <> $1 AND ip = ANY($2)")
            .bind(user)
            .bind(&mine)
            .fetch_all(&s.pool)
            .await?;
    Ok(ips.into_iter().collect())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppealRequest {
    /// Why the ban is wrong, 1 to 4000 characters.
    #[schema(required = true, max_length = 4000)]
    text: Option<String>,
    /// Where to send the outcome (optional; never shown to anyone, never on the event stream).
    #[schema(max_length = 254)]
    contact_email: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppealCreated {
    pub appeal_id: Uuid,
    /// Always `pending`.
    pub status: &'static str,
    pub message: &'static str,
}

/// The state of the appeal of a user's latest ban, as the ban notice shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppealSummary {
    pub appeal_id: Uuid,
    /// `pending`, `upheld` or `overturned`.
    #[schema(value_type = AppealStatus)]
    pub status: String,
    pub submitted_at: DateTime<Utc>,
    #[schema(required = true)]
    pub decided_at: Option<DateTime<Utc>>,
    /// The admin's note to the user, if any.
    #[schema(required = true)]
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum AppealStatus {
    Pending,
    Upheld,
    Overturned,
}

/// Joins a `platform_users` row (`u`) to the appeal of its latest ban, as the `appeal_*`
/// columns [`appeal_in`] reads.
pub const LATEST_APPEAL_JOIN: &str = "LEFT JOIN LATERAL (
        SELECT a.appeal_id, a.status AS appeal_status, a.created_at AS appeal_created_at,
               a.decided_at AS appeal_decided_at, a.note AS appeal_note
          FROM ban_appeals a
         WHERE a.user_id = u.user_id AND a.banned_at = u.banned_at
         ORDER BY a.created_at DESC LIMIT 1) latest_appeal ON true";

/// The appeal of a row joined with [`LATEST_APPEAL_JOIN`] (none: not appealed).
pub fn appeal_in(row: &sqlx::postgres::PgRow) -> Option<AppealSummary> {
    let appeal_id: Option<Uuid> = row.get("appeal_id");
    appeal_id.map(|appeal_id| AppealSummary {
        appeal_id,
        status: row.get("appeal_status"),
        submitted_at: row.get("appeal_created_at"),
        decided_at: row.get("appeal_decided_at"),
        note: row.get("appeal_note"),
    })
}

#[utoipa::path(
    post,
    path = "/report/appeal",
    operation_id = "appealBan",
    tag = "appeals",
    summary = "Appeal the caller's ban",
    description = "Once per ban, while it stands (temporary or permanent). Reachable from banned IPs. The outcome shows in `GET /report/check-ban` (`appeal`) and is emailed to `contactEmail` when given. Rate limited per IP with the public writes.",
    security(("sessionBearer" = [])),
    request_body(content = AppealRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Appeal filed; an admin will decide it.", body = AppealCreated),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing or invalid session token. Codes: `missing_token`, `invalid_token`, `sessions_not_configured`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `not_banned` (nothing to appeal), `already_appealed`, `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `text_required`, `text_too_long`, `invalid_email`, `invalid_body`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn appeal(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    request: axum::extract::Request,
) -> Result<impl IntoResponse> {
    let (mut parts, body) = request.into_parts();
    let user = limited_session_user(&s, &s.public_writes, ip, &mut parts).await?;
    let Json(body) = <Json<AppealRequest> as axum::extract::FromRequest<AppState>>::from_request(
        axum::extract::Request::from_parts(parts, body),
        &s,
    )
    .await?;
    let text = optional_text(body.text, "text", "text_too_long", MAX_APPEAL_CHARS)?
        .ok_or_else(|| ApiError::unprocessable("text_required", "text is required"))?;
    let email = contact_email(body.contact_email, "contactEmail")?;
    let appeal_id = Uuid::new_v4();
    let cmd = PlatformUserCommand::Appeal {
        appeal_id,
        text,
        email,
    };
    let ctx = rid.context(format!("user:{}", user.id));
    execute_returning(&s.platform_users, &s.pool, &user.id, cmd, &ctx).await?;
    metrics::counter!("ban_appeals_total").increment(1);
    Ok((
        StatusCode::CREATED,
        axum::Json(AppealCreated {
            appeal_id,
            status: "pending",
            message: "Appeal received. An admin will review it.",
        }),
    ))
}

#[derive(Deserialize)]
pub struct AppealQuery {
    pub status: Option<String>,
    #[serde(flatten)]
    pub page: PageQuery,
}

/// An appeal on the admin queue, with the ban it is about.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppealView {
    pub appeal_id: Uuid,
    pub user_id: String,
    #[schema(required = true)]
    pub user_name: Option<String>,
    pub text: String,
    #[schema(value_type = AppealStatus)]
    pub status: String,
    pub submitted_at: DateTime<Utc>,
    #[schema(required = true)]
    pub decided_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub decided_by: Option<String>,
    #[schema(required = true)]
    pub note: Option<String>,
    /// The user's ban status now.
    #[schema(value_type = BanStatus)]
    pub ban_status: String,
    /// When the appealed ban began, milliseconds since the Unix epoch.
    pub banned_at: i64,
    #[schema(required = true)]
    pub banned_reason: Option<String>,
    pub report_count: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppealList {
    pub appeals: Vec<AppealView>,
    pub count: i64,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/appeals",
    operation_id = "listAppeals",
    tag = "appeals",
    summary = "The appeals queue",
    description = "Oldest first, a page at a time.",
    security(("adminBearer" = [])),
    params(
        ("status" = Option<String>, Query, description = "`pending` (default), `upheld`, `overturned` or `all`."),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50).", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page's `nextCursor`.")
    ),
    responses(
        (status = 200, description = "Appeals with the ban each is about.", body = AppealList),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_status`, `invalid_limit`, `invalid_cursor`, `invalid_query`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(s): State<AppState>,
    _admin: AdminSession,
    Query(q): Query<AppealQuery>,
) -> Result<impl IntoResponse> {
    let (rows, next_cursor) = queue_page(
        &s.pool,
        "SELECT q.*, u.name, u.ban_status, u.banned_reason, u.report_count
           FROM ban_appeals q LEFT JOIN platform_users u ON u.user_id = q.user_id",
        "appeal_id",
        &q,
    )
    .await?;
    let appeals: Vec<AppealView> = rows
        .iter()
        .map(|r| AppealView {
            appeal_id: r.get("appeal_id"),
            user_id: r.get("user_id"),
            user_name: r.get("name"),
            text: r.get("text"),
            status: r.get("status"),
            submitted_at: r.get("created_at"),
            decided_at: r.get("decided_at"),
            decided_by: r.get("decided_by"),
            note: r.get("note"),
            ban_status: r
                .get::<Option<String>, _>("ban_status")
                .unwrap_or_else(|| "none".into()),
            banned_at: ms(r.get("banned_at")).unwrap_or_default(),
            banned_reason: r.get("banned_reason"),
            report_count: r.get::<Option<i32>, _>("report_count").unwrap_or(0).into(),
        })
        .collect();
    Ok(axum::Json(AppealList {
        count: appeals.len() as i64,
        appeals,
        next_cursor,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct AppealDecisionRequest {
    /// `uphold` (the ban or listing stays as it is) or `overturn` (it is lifted).
    #[schema(value_type = AppealDecision, inline, required = true)]
    pub decision: Option<String>,
    /// Shown to the person and sent with the outcome email (at most 1000 characters).
    #[schema(max_length = 1000)]
    pub note: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "lowercase")]
pub enum AppealDecision {
    Uphold,
    Overturn,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppealDecided {
    pub appeal_id: Uuid,
    pub user_id: String,
    #[schema(value_type = AppealStatus)]
    pub status: &'static str,
    /// The user's ban status after the decision.
    #[schema(value_type = BanStatus)]
    pub ban_status: &'static str,
    /// IPs unbanned by an overturn (others stay banned while another banned user holds them).
    pub ips_lifted: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/admin/appeals/{appeal_id}/decision",
    operation_id = "decideAppeal",
    tag = "appeals",
    summary = "Uphold or overturn an appeal",
    description = "`overturn` lifts the ban (temporary or permanent) as a vindication does: the user's IPs are unbanned unless another banned user shares them. Host platforms hear of it on the ban feed (`AppealDecided`, then `BanReviewed` and `IpBansLifted`).",
    security(("adminBearer" = [])),
    params(("appeal_id" = Uuid, Path, description = "The appeal.")),
    request_body(content = AppealDecisionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Decision recorded.", body = AppealDecided),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "No such appeal. Codes: `not_found`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `already_decided`, `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_id`, `invalid_decision`, `note_too_long`, `invalid_body`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(appeal = %raw_id))]
pub async fn decide(
    State(s): State<AppState>,
    admin: AdminSession,
    Path(raw_id): Path<String>,
    rid: RequestId,
    Json(body): Json<AppealDecisionRequest>,
) -> Result<impl IntoResponse> {
    let appeal_id = Uuid::parse_str(raw_id.trim())
        .map_err(|_| ApiError::unprocessable("invalid_id", "appealId must be a UUID"))?;
    let outcome = outcome_of(body.decision.as_deref())?;
    let note = optional_text(body.note, "note", "note_too_long", MAX_NOTE_CHARS)?;
    let user: String = sqlx::query_scalar("SELECT user_id FROM ban_appeals WHERE appeal_id = $1")
        .bind(appeal_id)
        .fetch_optional(&s.pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no appeal {appeal_id}")))?;
    let cmd = PlatformUserCommand::DecideAppeal {
        appeal_id,
        outcome,
        decided_by: admin.username.clone(),
        note,
        shared_ips: shared_ips(&s, &user).await?,
    };
    let ctx = rid.context(format!("admin:{}", admin.username));
    let produced = execute_returning(&s.platform_users, &s.pool, &user, cmd, &ctx).await?;
    let ips_lifted = produced
        .iter()
        .find_map(|e| match e {
            PlatformUserEvent::IpBansLifted { lifted, .. } => Some(lifted.clone()),
            _ => None,
        })
        .unwrap_or_default();
    let vindicated = produced
        .iter()
        .any(|e| matches!(e, PlatformUserEvent::BanReviewed { .. }));
    let ban_status = if vindicated {
        "vindicated"
    } else {
        let mut ctx = s
            .platform_user_store
            .load_aggregate(&user)
            .await
            .map_err(ApiError::from_aggregate)?;
        ctx.aggregate().ban_status().as_str()
    };
    metrics::counter!("ban_appeals_decided_total", "outcome" => outcome.as_str()).increment(1);
    Ok(axum::Json(AppealDecided {
        appeal_id,
        user_id: user,
        status: outcome.as_str(),
        ban_status,
        ips_lifted,
    }))
}
