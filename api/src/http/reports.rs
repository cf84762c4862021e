//! `/report/*`: user reports, automatic bans, reviews, the public blacklist.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use cqrs_es::{AggregateContext, EventStore};
use events::platform_user::{PlatformUserEvent, ReportCategory, ReviewDecision};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{limited_session_user, optional_text, Json, Query, RequestId};
use super::openapi::{BanStatus, ErrorBody, Forbidden};
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::client_ip::ClientIp;
use crate::commands::execute_returning;
use crate::domain::platform_user::PlatformUserCommand;
use crate::error::{ApiError, Result};
use crate::paging::{split_page, PageQuery};
use crate::queries::{ms, Blacklist};
use crate::session_auth::PlatformUser;

pub const MAX_REASON_CHARS: usize = 2000;

fn user_id(raw: &str, field: &str) -> Result<Uuid> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| ApiError::unprocessable("invalid_id", format!("{field} must be a UUID")))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserReportRequest {
    #[schema(value_type = Uuid, required = true)]
    reported_user_id: Option<String>,
    #[schema(max_length = 2000)]
    reason: Option<String>,
    /// What the report is about (default `other`).
    #[schema(value_type = Option<ReportCategory>)]
    category: Option<String>,
    #[schema(value_type = Option<Uuid>)]
    room_id: Option<String>,
    /// Opt-in: email the outcome of the review to this address (kept out of the event stream
    /// and every read model).
    #[schema(max_length = 254)]
    notify_email: Option<String>,
}

/// A category as a client sent it (absent or blank: `other`); 422 `invalid_category` else.
pub fn category_of(raw: Option<&str>) -> Result<ReportCategory> {
    match raw.map(str::trim).filter(|c| !c.is_empty()) {
        None => Ok(ReportCategory::Other),
        Some(c) => ReportCategory::parse(c).ok_or_else(|| {
            let all: Vec<&str> = ReportCategory::ALL.iter().map(|c| c.as_str()).collect();
            ApiError::unprocessable(
                "invalid_category",
                format!("category must be one of {}", all.join(", ")),
            )
        }),
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserReportCreated {
    pub success: bool,
    pub report_id: Uuid,
    pub report_count: i64,
    pub auto_banned: bool,
    pub message: &'static str,
}

/// A user's ban as the read model has it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BanRecord {
    pub user_id: String,
    #[schema(required = true)]
    pub user_name: Option<String>,
    #[schema(required = true)]
    pub user_selfie: Option<String>,
    #[schema(required = true)]
    pub user_video: Option<String>,
    #[schema(value_type = BanStatus)]
    pub ban_status: String,
    /// Milliseconds since the Unix epoch.
    #[schema(required = true)]
    pub banned_at: Option<i64>,
    #[schema(required = true)]
    pub banned_reason: Option<String>,
    pub report_count: i64,
    /// `pending`, `reviewed_ban` or `reviewed_vindicate` (read model values).
    #[schema(required = true)]
    pub review_status: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[schema(required = true)]
    pub reviewed_at: Option<i64>,
}

/// A ban waiting for review, with its newest reports (at most 20; `reportCount` says how many
/// there are, `GET /report/reports?userId=` pages through all of them).
#[derive(Serialize, ToSchema)]
pub struct PendingBan {
    #[serde(flatten)]
    pub record: BanRecord,
    pub reports: Vec<ReportView>,
    /// Signs of coordinated reporting among this ban's reports (empty: none seen).
    pub coordination: Vec<crate::coordination::CoordinationFlag>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingList {
    pub pending: Vec<PendingBan>,
    pub count: i64,
    /// Cursor of the next page; null on the last.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Permanent,
    Vindicated,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewResult {
    pub success: bool,
    pub user_id: String,
    #[schema(value_type = Decision, inline)]
    pub decision: &'static str,
    pub message: &'static str,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BanCheck {
    pub is_banned: bool,
    #[schema(value_type = BanStatus)]
    pub ban_status: String,
    /// Null when banStatus is `none`.
    #[schema(required = true)]
    pub ban_record: Option<BanRecord>,
    /// The appeal of the latest ban; null when it was not appealed.
    #[schema(required = true)]
    pub appeal: Option<super::appeals::AppealSummary>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub total_reports: i64,
    pub total_bans: i64,
    pub pending_reviews: i64,
    pub permanent_bans: i64,
    pub temporary_bans: i64,
    pub vindicated: i64,
    pub reports_last24h: i64,
    pub banned_ips: i64,
    pub reviews_decided: i64,
    #[schema(minimum = 0, maximum = 1)]
    pub vindication_rate: f64,
    #[schema(required = true)]
    pub avg_review_seconds: Option<f64>,
    pub ban_evasion_attempts: i64,
    /// Reports per category (every category, 0 when none).
    #[schema(value_type = BTreeMap<String, i64>)]
    pub reports_by_category: std::collections::BTreeMap<&'static str, i64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportPage {
    pub reports: Vec<ReportView>,
    /// Items in this page.
    pub count: i64,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    post,
    path = "/report/user",
    operation_id = "reportUser",
    tag = "reports",
    summary = "Report another platform user",
    description = "One report per reporter and reported user. When the reports' summed weights reach AUTO_BAN_THRESHOLD (default 4; every report weighs 1 unless REPORT_WEIGHT_* is configured) the user is banned `temporary`, review `pending`, and every IP seen for them is banned. A banned user's own token gets 403 `user_banned`.",
    security(("sessionBearer" = [])),
    request_body(content = UserReportRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Report filed.", body = UserReportCreated),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `sessions_not_configured`.", body = ErrorBody),
        (status = 403, description = "Forbidden. A banned IP gets the `AccessDenied` body (`access_denied`) before any other processing. Codes: `user_banned`, `access_denied`.", body = Forbidden),
        (status = 409, description = "Conflict. Codes: `already_reported`, `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_id`, `reason_too_long`, `invalid_category`, `invalid_email`, `self_report`, `invalid_body`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(reporter = %user.id))]
pub async fn report_user(
    State(s): State<AppState>,
    user: PlatformUser,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    Json(body): Json<UserReportRequest>,
) -> Result<impl IntoResponse> {
    let reported = body
        .reported_user_id
        .as_deref()
        .ok_or_else(|| ApiError::unprocessable("invalid_id", "reportedUserId is required"))?;
    let reported = user_id(reported, "reportedUserId")?.to_string();
    let room_id = body
        .room_id
        .as_deref()
        .filter(|r| !r.is_empty())
        .map(|r| user_id(r, "roomId"))
        .transpose()?;
    let reason = optional_text(body.reason, "reason", "reason_too_long", MAX_REASON_CHARS)?;
    let category = category_of(body.category.as_deref())?;
    let email = super::extract::contact_email(body.notify_email, "notifyEmail")?;
    if reported == user.id {
        return Err(ApiError::unprocessable(
            "self_report",
            "users cannot report themselves",
        ));
    }
    let mut reporter = s
        .platform_user_store
        .load_aggregate(&user.id)
        .await
        .map_err(ApiError::from_aggregate)?;
    if reporter.aggregate().ban_status().is_banned() {
        return Err(ApiError::Forbidden(
            "user_banned",
            "banned users cannot report others".into(),
        ));
    }
    let report_id = Uuid::new_v4();
    let cmd = PlatformUserCommand::FileReport {
        report_id,
        reporter_id: user.id.clone(),
        reporter_ip: Some(ip.to_string()),
        reason,
        category,
        room_id,
        at: Utc::now(),
        standing: standing(&s, &user.id).await?,
        email,
    };
    let ctx = rid.context(format!("user:{}", user.id));
    let produced = execute_returning(&s.platform_users, &s.pool, &reported, cmd, &ctx).await?;
    let report_count = produced
        .iter()
        .find_map(|e| match e {
            PlatformUserEvent::ReportFiled { report_count, .. } => Some(*report_count),
            _ => None,
        })
        .unwrap_or_default();
    let auto_banned = produced
        .iter()
        .any(|e| matches!(e, PlatformUserEvent::UserAutoBanned { .. }));
    metrics::counter!("user_reports_total").increment(1);
    if auto_banned {
        metrics::counter!("user_auto_bans_total").increment(1);
        tracing::info!(user = reported, report_count, "user auto-banned");
    }
    let message = if auto_banned {
        "Report submitted. User has been temporarily banned pending review."
    } else {
        "Report submitted."
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(UserReportCreated {
            success: true,
            report_id,
            report_count: report_count.into(),
            auto_banned,
            message,
        }),
    ))
}

/// The reporter's standing (0 to 1) under the configured weights: earlier targets vindicated
/// and a new account count less. 1 when weighting is off (nothing is read).
async fn standing(s: &AppState, reporter: &str) -> Result<f64> {
    let w = s.weights;
    if !w.reads_standing() {
        return Ok(1.0);
    }
    let (vindicated, first_seen): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT (SELECT count(DISTINCT r.reported_user_id) FROM user_reports r
                   JOIN ban_reviews b ON b.user_id = r.reported_user_id
                                     AND b.decision = 'vindicated' AND b.reviewed_at >= r.created_at
                  WHERE r.reporter_user_id = $1),
                (SELECT first_seen_at FROM platform_users WHERE user_id = $1)",
    )
    .bind(reporter)
    .fetch_one(&s.pool)
    .await?;
    let mut weight = w
        .vindicated_factor
        .clamp(0.0, 1.0)
        .powi(vindicated.min(64) as i32);
    let new = first_seen
        .is_none_or(|t| Utc::now() - t < chrono::Duration::hours(w.new_account_hours.max(0)));
    if new {
        weight *= w.new_account_factor.clamp(0.0, 1.0);
    }
    Ok(weight)
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportView {
    pub report_id: Uuid,
    pub reported_user_id: String,
    #[schema(required = true)]
    pub reported_user_name: Option<String>,
    pub reporter_user_id: String,
    #[schema(required = true)]
    pub reporter_name: Option<String>,
    #[schema(required = true)]
    pub reporter_ip: Option<String>,
    #[schema(required = true)]
    pub reason: Option<String>,
    #[schema(required = true)]
    pub room_id: Option<Uuid>,
    /// What the report is about (`other` for reports from before categories).
    #[schema(value_type = ReportCategory)]
    pub category: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// The reported user's report count after this report.
    pub report_count: i32,
    /// What the report counted towards the auto-ban threshold (1 unless weighting is on).
    pub weight: f64,
}

const REPORT_SELECT: &str = "SELECT r.report_id, r.reported_user_id, ru.name AS reported_user_name,
        r.reporter_user_id, rp.name AS reporter_name, r.reporter_ip, r.reason, r.room_id, r.category,
        r.created_at, r.report_count, r.weight
   FROM user_reports r
   LEFT JOIN platform_users ru ON ru.user_id = r.reported_user_id
   LEFT JOIN platform_users rp ON rp.user_id = r.reporter_user_id";

fn report_view(r: &sqlx::postgres::PgRow) -> ReportView {
    let created: DateTime<Utc> = r.get("created_at");
    ReportView {
        report_id: r.get("report_id"),
        reported_user_id: r.get("reported_user_id"),
        reported_user_name: r.get("reported_user_name"),
        reporter_user_id: r.get("reporter_user_id"),
        reporter_name: r.get("reporter_name"),
        reporter_ip: r.get("reporter_ip"),
        reason: r.get("reason"),
        room_id: r.get("room_id"),
        category: r.get("category"),
        timestamp: created.timestamp_millis(),
        report_count: r.get("report_count"),
        weight: r.get("weight"),
    }
}

fn ban_record(r: &sqlx::postgres::PgRow) -> BanRecord {
    BanRecord {
        user_id: r.get("user_id"),
        user_name: r.get("name"),
        user_selfie: r.get("picture"),
        user_video: r.get("video"),
        ban_status: r.get("ban_status"),
        banned_at: ms(r.get("banned_at")),
        banned_reason: r.get("banned_reason"),
        report_count: r.get::<i32, _>("report_count").into(),
        review_status: r.get("review_status"),
        reviewed_at: ms(r.get("reviewed_at")),
    }
}

/// Reports of a pending user (the newest) the coordination flags look at.
const COORDINATION_WINDOW: i64 = 200;

/// Reports shown with each pending user (the newest); `reportCount` says how many there are and
/// `GET /report/reports?userId=` pages through all of them.
const REPORTS_PER_PENDING_USER: i64 = 20;

/// `GET /report/pending`: paged (oldest ban first), like every list.
#[utoipa::path(
    get,
    path = "/report/pending",
    operation_id = "listPendingBans",
    tag = "reports",
    summary = "Bans awaiting review",
    security(("adminBearer" = [])),
    params(
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50).", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page's `nextCursor`.")
    ),
    responses(
        (status = 200, description = "Users whose ban awaits review, oldest ban first, a page at a time (`nextCursor`), each with their newest 20 reports (`reportCount` gives the total; `GET /report/reports?userId=` pages through all).", body = PendingList),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_id`, `invalid_limit`, `invalid_cursor`, `invalid_query`.", body = ErrorBody)
    )
)]
#[tracing::instrument(skip_all)]
pub async fn pending(
    State(s): State<AppState>,
    _admin: AdminSession,
    Query(page): Query<PageQuery>,
) -> Result<impl IntoResponse> {
    let limit = page.limit()?;
    let after: Option<(i64, String)> = page.cursor()?;
    let users = sqlx::query(
        "SELECT * FROM platform_users
          WHERE review_status = 'pending'
            AND ($1::bigint IS NULL
                 OR (EXTRACT(EPOCH FROM coalesce(banned_at, 'epoch'::timestamptz)) * 1000000)::bigint > $1
                 OR ((EXTRACT(EPOCH FROM coalesce(banned_at, 'epoch'::timestamptz)) * 1000000)::bigint = $1
                     AND user_id > $2))
          ORDER BY coalesce(banned_at, 'epoch'::timestamptz), user_id
          LIMIT $3",
    )
    .bind(after.as_ref().map(|a| a.0))
    .bind(after.map(|a| a.1).unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let (users, next) = split_page(users, limit, |u| {
        let at: Option<DateTime<Utc>> = u.get("banned_at");
        (
            at.map_or(0, |t| t.timestamp_micros()),
            u.get::<String, _>("user_id"),
        )
    });
    let ids: Vec<String> = users.iter().map(|u| u.get("user_id")).collect();
    let reports = sqlx::query(&format!(
        "SELECT * FROM (
            SELECT x.*, row_number() OVER (PARTITION BY x.reported_user_id
                                           ORDER BY x.created_at DESC, x.report_id) AS nth
              FROM ({REPORT_SELECT} WHERE r.reported_user_id = ANY($1)) x
         ) ranked
         WHERE nth <= $2
         ORDER BY created_at DESC, report_id"
    ))
    .bind(&ids)
    .bind(REPORTS_PER_PENDING_USER)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    // The reports of this ban cycle (since the last vindication), for the coordination flags:
    // the newest COORDINATION_WINDOW of each user, so a heavily reported user stays cheap.
    let cycle: Vec<(String, Uuid, Option<String>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT reported_user_id, report_id, reporter_ip, created_at FROM (
            SELECT r.reported_user_id, r.report_id, r.reporter_ip, r.created_at,
                   row_number() OVER (PARTITION BY r.reported_user_id ORDER BY r.created_at DESC) AS nth
              FROM user_reports r
             WHERE r.reported_user_id = ANY($1)
               AND r.created_at > coalesce((SELECT max(b.reviewed_at) FROM ban_reviews b
                                             WHERE b.user_id = r.reported_user_id
                                               AND b.decision = 'vindicated'), '-infinity')
         ) cycle WHERE nth <= $2",
    )
    .bind(&ids)
    .bind(COORDINATION_WINDOW)
    .fetch_all(&s.pool)
    .await?;
    let pending: Vec<PendingBan> = users
        .iter()
        .map(|u| {
            let id: String = u.get("user_id");
            let seen: Vec<crate::coordination::Seen> = cycle
                .iter()
                .filter(|c| c.0 == id)
                .map(|c| crate::coordination::Seen {
                    report_id: c.1,
                    reporter_ip: c.2.as_deref().and_then(|ip| ip.parse().ok()),
                    at: c.3,
                })
                .collect();
            PendingBan {
                record: ban_record(u),
                reports: reports
                    .iter()
                    .filter(|r| r.get::<String, _>("reported_user_id") == id)
                    .map(report_view)
                    .collect(),
                coordination: crate::coordination::flags(&seen),
            }
        })
        .collect();
    Ok(axum::Json(PendingList {
        count: pending.len() as i64,
        pending,
        next_cursor: next,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct ReviewRequest {
    #[schema(value_type = Decision, inline, required = true)]
    decision: Option<String>,
}

#[utoipa::path(
    post,
    path = "/report/review/{user_id}",
    operation_id = "reviewBan",
    tag = "reports",
    summary = "Decide a pending ban",
    description = "`permanent` adds the user to the blacklist; `vindicated` lifts the ban and unbans the user's IPs unless another banned user shares them. A malformed user id is 422 `invalid_id`.",
    security(("adminBearer" = [])),
    params(
        ("user_id" = Uuid, Path, description = "The platform user id (UUID).")
    ),
    request_body(content = ReviewRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Decision recorded.", body = ReviewResult),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `no_pending_ban`, `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_id`, `invalid_decision`, `invalid_body`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(user = %raw_id))]
pub async fn review(
    State(s): State<AppState>,
    admin: AdminSession,
    Path(raw_id): Path<String>,
    rid: RequestId,
    Json(body): Json<ReviewRequest>,
) -> Result<impl IntoResponse> {
    let id = user_id(&raw_id, "userId")?.to_string();
    let decision = match body.decision.as_deref() {
        Some("permanent") => ReviewDecision::Permanent,
        Some("vindicated") => ReviewDecision::Vindicated,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_decision",
                "decision must be \"permanent\" or \"vindicated\"",
            ))
        }
    };
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE aggregate_type = $1 AND aggregate_id = $2)",
    )
    .bind(events::platform_user::AGGREGATE_TYPE)
    .bind(&id)
    .fetch_one(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    if !known {
        return Err(ApiError::NotFound(format!("no user {id}")));
    }
    let cmd = PlatformUserCommand::ReviewBan {
        decision,
        reviewer: admin.username.clone(),
        shared_ips: super::appeals::shared_ips(&s, &id).await?,
    };
    let produced = execute_returning(
        &s.platform_users,
        &s.pool,
        &id,
        cmd,
        &rid.context(format!("admin:{}", admin.username)),
    )
    .await?;
    let (label, message) = match decision {
        ReviewDecision::Permanent => ("permanent", "User permanently banned and added to blacklist"),
        ReviewDecision::Vindicated => ("vindicated", "User vindicated; ban lifted and IP bans removed unless shared with another banned user"),
    };
    if let Some(PlatformUserEvent::BanReviewed { banned_at, .. }) = produced.first() {
        let waited = (Utc::now() - *banned_at).num_milliseconds().max(0) as f64 / 1000.0;
        metrics::histogram!("ban_review_seconds").record(waited);
    }
    metrics::counter!("ban_reviews_total", "decision" => label).increment(1);
    Ok(axum::Json(ReviewResult {
        success: true,
        user_id: id,
        decision: label,
        message,
    }))
}

#[utoipa::path(
    get,
    path = "/report/blacklist",
    operation_id = "getBlacklist",
    tag = "reports",
    summary = "The public blacklist (permanent bans)",
    description = "Public; rate limited per IP; reachable from banned IPs. Answers carry an `ETag` and `Cache-Control: public, max-age=<BLACKLIST_CACHE_SECONDS>` (5 by default); `If-None-Match` with the ETag is answered 304. A repeated search within that interval is served from memory, so a new permanent ban shows up within it.",
    security(()),
    params(
        ("q" = Option<String>, Query, description = "Case-insensitive substring of the user name or the ban's reason."),
        ("from" = Option<DateTime<Utc>>, Query, description = "Banned at or after (RFC 3339)."),
        ("to" = Option<DateTime<Utc>>, Query, description = "Banned before (RFC 3339); after `from` (422 `invalid_period`)."),
        ("category" = Option<ReportCategory>, Query, description = "Only users reported at least once in this category (422 `invalid_category` for an unknown one)."),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50).", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page's `nextCursor`.")
    ),
    responses(
        (status = 200, description = "Permanently banned users, most recently banned first.", body = Blacklist, headers(("ETag" = String, description = "Identifies this answer."), ("Cache-Control" = String, description = "`public, max-age=<seconds>`, or `no-cache` when caching is off."))),
        (status = 304, description = "Not modified: the `If-None-Match` ETag is still the answer."),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_category`, `invalid_period`, `invalid_limit`, `invalid_cursor`, `invalid_query`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn blacklist(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: axum::http::HeaderMap,
    Query(query): Query<crate::queries::BlacklistQuery>,
) -> Result<axum::response::Response> {
    use axum::http::header;
    crate::ratelimit::rate_limit(&s.public_reads, ip)?;
    let answer = crate::queries::blacklist(&s, &query).await?;
    let body = serde_json::to_vec(&*answer)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("serializing")))?;
    let etag = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(&body);
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    };
    let cache_control = s.blacklist_cache.cache_control();
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|tag| tag.trim().trim_start_matches("W/") == etag)
        });
    let caching = [(header::ETAG, etag), (header::CACHE_CONTROL, cache_control)];
    if unchanged {
        return Ok((StatusCode::NOT_MODIFIED, caching).into_response());
    }
    Ok((
        caching,
        [(header::CONTENT_TYPE, "application/json".to_owned())],
        body,
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/report/blacklist/{user_id}",
    operation_id = "getBlacklistEntry",
    tag = "reports",
    summary = "One user on the public blacklist",
    description = "Public; rate limited per IP; reachable from banned IPs. Only a permanent ban is public: anyone else is 404. The page `/blacklist/{userId}` shows the same entry (a shareable link). `Cache-Control: public, max-age=<BLACKLIST_CACHE_SECONDS>`.",
    security(()),
    params(("user_id" = Uuid, Path, description = "The platform user id.")),
    responses(
        (status = 200, description = "The entry.", body = crate::queries::BlacklistProfile, headers(("Cache-Control" = String, description = "`public, max-age=<seconds>`, or `no-cache` when caching is off."))),
        (status = 404, description = "Not on the blacklist. Codes: `not_found`.", body = ErrorBody),
        (status = 422, description = "Codes: `invalid_id`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn blacklist_entry(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(raw_id): Path<String>,
) -> Result<impl IntoResponse> {
    crate::ratelimit::rate_limit(&s.public_reads, ip)?;
    let id = user_id(&raw_id, "userId")?.to_string();
    let profile = crate::queries::blacklisted(&s, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{id} is not on the blacklist")))?;
    let cache_control = s.blacklist_cache.cache_control();
    Ok((
        [(axum::http::header::CACHE_CONTROL, cache_control)],
        axum::Json(profile),
    ))
}

/// Under the public read limit per IP, checked before the session is read (and recorded), so a
/// flood of check-bans cannot feed a user's IP history.
#[utoipa::path(
    get,
    path = "/report/check-ban",
    operation_id = "checkBan",
    tag = "reports",
    summary = "The caller's own ban status",
    description = "Reachable from banned IPs.",
    security(("sessionBearer" = [])),
    responses(
        (status = 200, description = "The caller's ban status.", body = BanCheck),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `sessions_not_configured`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `conflict`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn check_ban(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    request: axum::extract::Request,
) -> Result<impl IntoResponse> {
    let (mut parts, _) = request.into_parts();
    let user = limited_session_user(&s, &s.public_reads, ip, &mut parts).await?;
    // One query: the user's row and the appeal of their latest ban.
    let row = sqlx::query(&format!(
        "SELECT u.*, latest_appeal.* FROM platform_users u {} WHERE u.user_id = $1",
        super::appeals::LATEST_APPEAL_JOIN
    ))
    .bind(&user.id)
    .fetch_optional(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let appeal = row.as_ref().and_then(super::appeals::appeal_in);
    let status = row
        .as_ref()
        .map(|r| r.get::<String, _>("ban_status"))
        .unwrap_or_else(|| "none".into());
    let is_banned = status == "temporary" || status == "permanent";
    let ban_record = row.filter(|_| status != "none").map(|r| ban_record(&r));
    Ok(axum::Json(BanCheck {
        is_banned,
        ban_status: status,
        ban_record,
        appeal,
    }))
}

#[utoipa::path(
    get,
    path = "/report/stats",
    operation_id = "getReportStats",
    tag = "reports",
    summary = "Report and ban statistics",
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "Statistics.", body = Stats),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn stats(State(s): State<AppState>, _admin: AdminSession) -> Result<impl IntoResponse> {
    let r = sqlx::query(
        "SELECT (SELECT count(*) FROM user_reports) AS total_reports,
                (SELECT coalesce(sum(ban_count), 0)::bigint FROM platform_users) AS total_bans,
                count(*) FILTER (WHERE review_status = 'pending') AS pending,
                count(*) FILTER (WHERE ban_status = 'permanent') AS permanent,
                count(*) FILTER (WHERE ban_status = 'temporary') AS temporary,
                count(*) FILTER (WHERE ban_status = 'vindicated') AS vindicated,
                (SELECT count(*) FROM ban_reviews) AS reviews,
                (SELECT count(*) FROM ban_reviews WHERE decision = 'vindicated') AS vindications,
                (SELECT avg(EXTRACT(EPOCH FROM reviewed_at - banned_at))::float8 FROM ban_reviews) AS avg_review,
                (SELECT count(*) FROM ip_bans) AS ip_bans,
                (SELECT count(*) FROM user_reports WHERE created_at > now() - interval '1 day') AS reports_24h
           FROM platform_users",
    )
    .fetch_one(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let reviews: i64 = r.get("reviews");
    let vindications: i64 = r.get("vindications");
    Ok(axum::Json(Stats {
        total_reports: r.get("total_reports"),
        total_bans: r.get("total_bans"),
        pending_reviews: r.get("pending"),
        permanent_bans: r.get("permanent"),
        temporary_bans: r.get("temporary"),
        vindicated: r.get("vindicated"),
        reports_last24h: r.get("reports_24h"),
        banned_ips: r.get("ip_bans"),
        reviews_decided: reviews,
        vindication_rate: if reviews > 0 {
            vindications as f64 / reviews as f64
        } else {
            0.0
        },
        avg_review_seconds: r.get("avg_review"),
        ban_evasion_attempts: s.evasion.total(&s.pool).await.map_err(ApiError::from_db)?,
        reports_by_category: reports_by_category(&s.pool).await?,
    }))
}

/// Report counts per category, every category present.
async fn reports_by_category(
    pool: &sqlx::PgPool,
) -> Result<std::collections::BTreeMap<&'static str, i64>> {
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT category, count(*) FROM user_reports GROUP BY category")
            .fetch_all(pool)
            .await?;
    let mut counts: std::collections::BTreeMap<&'static str, i64> = ReportCategory::ALL
        .iter()
        .map(|c| (c.as_str(), 0))
        .collect();
    for (category, n) in rows {
        if let Some(c) = ReportCategory::parse(&category) {
            counts.insert(c.as_str(), n);
        }
    }
    Ok(counts)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportsQuery {
    user_id: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[utoipa::path(
    get,
    path = "/report/reports",
    operation_id = "listUserReports",
    tag = "reports",
    summary = "All user reports, newest first",
    security(("adminBearer" = [])),
    params(
        ("userId" = Option<Uuid>, Query, description = "Only reports about this user (UUID)."),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50).", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page's `nextCursor`.")
    ),
    responses(
        (status = 200, description = "A page of reports.", body = ReportPage),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_id`, `invalid_limit`, `invalid_cursor`, `invalid_query`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn reports(
    State(s): State<AppState>,
    _admin: AdminSession,
    Query(query): Query<ReportsQuery>,
) -> Result<impl IntoResponse> {
    let limit = query.page.limit()?;
    let user = query
        .user_id
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(|u| user_id(u, "userId"))
        .transpose()?;
    let after: Option<(i64, Uuid)> = query.page.cursor()?;
    let rows = sqlx::query(&format!(
        "{REPORT_SELECT}
          WHERE ($1::text IS NULL OR r.reported_user_id = $1)
            AND ($2::bigint IS NULL OR (EXTRACT(EPOCH FROM r.created_at) * 1000000)::bigint < $2
                 OR ((EXTRACT(EPOCH FROM r.created_at) * 1000000)::bigint = $2 AND r.report_id > $3))
          ORDER BY r.created_at DESC, r.report_id
          LIMIT $4"
    ))
    .bind(user.map(|u| u.to_string()))
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1).unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let (rows, next) = split_page(rows, limit, |r| {
        let at: DateTime<Utc> = r.get("created_at");
        (at.timestamp_micros(), r.get::<Uuid, _>("report_id"))
    });
    let reports: Vec<ReportView> = rows.iter().map(report_view).collect();
    Ok(axum::Json(ReportPage {
        count: reports.len() as i64,
        reports,
        next_cursor: next,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusQuery {
    reported_user_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportStatus {
    pub reported_user_id: String,
    /// Whether the session's user has reported them (one report per pair, ever).
    pub reported: bool,
}

#[utoipa::path(
    get,
    path = "/report/status",
    operation_id = "getReportStatus",
    tag = "reports",
    summary = "Has the session's user already reported this one?",
    description = "For a report button: `reported: true` means a second report would be 409 `already_reported`. Read from the event store, so it holds right after a report. Rate limited per IP with the public reads.",
    security(("sessionBearer" = [])),
    params(("reportedUserId" = Uuid, Query, description = "The user a report button is for.")),
    responses(
        (status = 200, description = "Whether the pair has a report.", body = ReportStatus),
        (status = 401, description = "Missing or invalid session token. Codes: `missing_token`, `invalid_token`.", body = ErrorBody),
        (status = 403, description = "Forbidden. A banned IP gets the `AccessDenied` body (`access_denied`) before any other processing. Codes: `access_denied`.", body = Forbidden),
        (status = 422, description = "Codes: `invalid_id`, `invalid_query`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn status(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    request: axum::extract::Request,
) -> Result<impl IntoResponse> {
    crate::ratelimit::rate_limit(&s.public_reads, ip)?;
    let (mut parts, _) = request.into_parts();
    let Query(q) =
        <Query<StatusQuery> as axum::extract::FromRequestParts<AppState>>::from_request_parts(
            &mut parts, &s,
        )
        .await?;
    let reported = q
        .reported_user_id
        .as_deref()
        .ok_or_else(|| ApiError::unprocessable("invalid_id", "reportedUserId is required"))?;
    let reported = user_id(reported, "reportedUserId")?.to_string();
    let user = <PlatformUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut parts, &s,
    )
    .await?;
    let mut ctx = s
        .platform_user_store
        .load_aggregate(&reported)
        .await
        .map_err(ApiError::from_aggregate)?;
    Ok(axum::Json(ReportStatus {
        reported: ctx.aggregate().was_reported_by(&user.id),
        reported_user_id: reported,
    }))
}
