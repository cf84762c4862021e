//! `/client/phones/*` (public) and `/admin/phones/*` (moderation).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use events::phone_number::Category;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{optional_text, Json, Query, RequestId};
use super::openapi::{
    constant, ErrorBody, Forbidden, PhoneCategory, PhoneReportStatus, PhoneStatus,
};
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::client_ip::ClientIp;
use crate::commands::execute;
use crate::domain::phone_number::{normalize, PhoneCommand};
use crate::error::{ApiError, Result};
use crate::paging::{split_page, PageQuery};
use crate::ratelimit::rate_limit;

pub const MAX_DESCRIPTION_CHARS: usize = 2000;

pub fn number(raw: &str, region: Option<&str>) -> Result<String> {
    normalize(raw, region)
        .map_err(|e| ApiError::unprocessable("invalid_phone_number", e.to_string()))
}

/// A report of a phone number. Every field is checked by the handler (a clear 422 each).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneReportRequest {
    #[schema(value_type = String, required = true)]
    phone_number: Option<String>,
    /// ISO 3166 region for numbers without a leading +, e.g. US.
    region: Option<String>,
    #[schema(value_type = PhoneCategory, required = true)]
    category: Option<String>,
    #[schema(max_length = 2000)]
    description: Option<String>,
    #[schema(max_length = 2048)]
    turnstile_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneReportCreated {
    pub report_id: Uuid,
    /// E.164
    pub phone_number: String,
    #[schema(value_type = ReportPending, inline)]
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneLookup {
    /// E.164
    pub phone_number: String,
    #[schema(value_type = PhoneStatus)]
    pub status: String,
    pub approved_reports: i64,
    pub pending_reports: i64,
    /// Report counts per category.
    #[schema(value_type = BTreeMap<String, i64>)]
    pub categories: Value,
    #[schema(required = true)]
    pub last_reported_at: Option<DateTime<Utc>>,
    /// Analysed calls from this number judged a scam whose evidence is pending moderation or approved (reports with a `taskId`). They count in `pendingReports`/`approvedReports` and `categories.scam` too.
    #[schema(minimum = 0)]
    pub flagged_calls: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneReportItem {
    pub id: Uuid,
    pub phone_number: String,
    #[schema(value_type = PhoneCategory)]
    pub category: String,
    #[schema(required = true)]
    pub description: Option<String>,
    #[schema(value_type = PhoneReportStatus)]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub counted: bool,
    #[schema(required = true)]
    pub reporter_ip: Option<String>,
    /// Distinct reporter IPs of the number.
    pub distinct_ips: i64,
    /// Set when the report is the evidence of an analysed call from this number judged a scam (filed by the voice pipeline, no reporter IP, `category` scam, the task in `description`); null for reports from people.
    #[schema(required = true)]
    pub task_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneReportPage {
    pub items: Vec<PhoneReportItem>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoneDecision {
    pub id: Uuid,
    pub phone_number: String,
    #[schema(value_type = Decided, inline)]
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum Decided {
    Approved,
    Rejected,
}

constant!(ReportPending, "pending");

#[utoipa::path(
    post,
    path = "/client/phones/report",
    operation_id = "reportPhone",
    tag = "phones",
    summary = "Report a phone number",
    description = "Public, Turnstile-protected, rate limited per IP. The number is normalized to E.164.",
    security(()),
    request_body(content = PhoneReportRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The report, pending moderation.", body = PhoneReportCreated),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 403, description = "Forbidden. A banned IP gets the `AccessDenied` body (`access_denied`) before any other processing. Codes: `captcha_failed`, `access_denied`.", body = Forbidden),
        (status = 409, description = "Conflict. Codes: `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_phone_number`, `invalid_category`, `description_too_long`, `invalid_body`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(ip = %ip))]
pub async fn report(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    Json(body): Json<PhoneReportRequest>,
) -> Result<impl IntoResponse> {
    rate_limit(&s.public_writes, ip)?;
    let e164 = number(
        body.phone_number.as_deref().unwrap_or_default(),
        body.region.as_deref(),
    )?;
    let category = body
        .category
        .as_deref()
        .and_then(Category::parse)
        .ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_category",
                "category must be scam, spam, robocall, harassment or other",
            )
        })?;
    let description = optional_text(
        body.description,
        "description",
        "description_too_long",
        MAX_DESCRIPTION_CHARS,
    )?;
    s.turnstile
        .verify(body.turnstile_token.as_deref(), ip)
        .await?;
    let report_id = Uuid::new_v4();
    let cmd = PhoneCommand::Report {
        report_id,
        category,
        description,
        reporter_ip: Some(ip.to_string()),
        at: Utc::now(),
    };
    execute(&s.phones, &e164, cmd, &rid.context(format!("ip:{ip}"))).await?;
    metrics::counter!("phone_reports_total").increment(1);
    Ok((
        StatusCode::CREATED,
        axum::Json(PhoneReportCreated {
            report_id,
            phone_number: e164,
            status: "pending",
        }),
    ))
}

#[derive(Deserialize)]
pub struct LookupQuery {
    region: Option<String>,
}

#[utoipa::path(
    get,
    path = "/client/phones/{phone_number}",
    operation_id = "lookupPhone",
    tag = "phones",
    summary = "Look up a phone number's standing",
    description = "Public; rate limited per IP. `flaggedCalls` counts analysed calls from the number judged a scam whose evidence is pending or approved.",
    security(()),
    params(
        ("phone_number" = String, Path, description = "The phone number (URL-encoded; E.164 or national with `region`)."),
        ("region" = Option<String>, Query, description = "ISO 3166 region for numbers without a leading +.")
    ),
    responses(
        (status = 200, description = "The number's standing (`unknown` with zero counts when never reported).", body = PhoneLookup),
        (status = 403, description = "Forbidden. A banned IP gets the `AccessDenied` body (`access_denied`) before any other processing. Codes: `access_denied`.", body = Forbidden),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_phone_number`, `invalid_query`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn lookup(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
    Query(q): Query<LookupQuery>,
) -> Result<impl IntoResponse> {
    rate_limit(&s.public_reads, ip)?;
    let e164 = number(&raw, q.region.as_deref())?;
    let row = sqlx::query("SELECT * FROM phone_numbers WHERE phone_number = $1")
        .bind(&e164)
        .fetch_optional(&s.pool)
        .await
        .map_err(ApiError::from_db)?;
    let body = match row {
        Some(r) => PhoneLookup {
            phone_number: e164,
            status: r.get("status"),
            approved_reports: r.get::<i32, _>("approved_reports").into(),
            pending_reports: r.get::<i32, _>("pending_reports").into(),
            categories: r.get("categories"),
            last_reported_at: r.get("last_reported_at"),
            flagged_calls: r.get::<i32, _>("flagged_calls").into(),
        },
        None => PhoneLookup {
            phone_number: e164,
            status: "unknown".into(),
            approved_reports: 0,
            pending_reports: 0,
            categories: Value::Object(Default::default()),
            last_reported_at: None,
            flagged_calls: 0,
        },
    };
    Ok(axum::Json(body))
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    q: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[utoipa::path(
    get,
    path = "/admin/phones",
    operation_id = "listPhoneReports",
    tag = "phones",
    summary = "List phone reports for moderation",
    description = "Reports from people and, with `taskId` set, the evidence of analysed calls judged a scam (filed by the voice pipeline as pending reports; approving one makes the number `dangerous` like any report).",
    security(("adminBearer" = [])),
    params(
        ("status" = Option<PhoneReportStatus>, Query, description = "Filter by report status."),
        ("q" = Option<String>, Query, description = "Digits to search for in the number (non-digits are ignored)."),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50).", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page's `nextCursor`.")
    ),
    responses(
        (status = 200, description = "A page of reports, newest first.", body = PhoneReportPage),
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
    Query(query): Query<ListQuery>,
) -> Result<impl IntoResponse> {
    let limit = query.page.limit()?;
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(st @ ("pending" | "approved" | "rejected")) => Some(st.to_owned()),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_status",
                "status must be pending, approved or rejected",
            ))
        }
    };
    let digits: Option<String> = query
        .q
        .as_deref()
        .map(|q| {
            q.chars()
                .filter(char::is_ascii_digit)
                .take(20)
                .collect::<String>()
        })
        .filter(|d| !d.is_empty());
    let after: Option<(i64, Uuid)> = query.page.cursor()?;
    let rows = sqlx::query(
        "SELECT r.*, n.distinct_ips,
                (EXTRACT(EPOCH FROM r.created_at) * 1000000)::bigint AS at_us
           FROM phone_reports r
           JOIN phone_numbers n ON n.phone_number = r.phone_number
          WHERE r.status <> 'deleted'
            AND ($1::text IS NULL OR r.status = $1)
            AND ($2::text IS NULL OR r.phone_number LIKE '%' || $2 || '%')
            AND ($3::bigint IS NULL OR (EXTRACT(EPOCH FROM r.created_at) * 1000000)::bigint < $3
                 OR ((EXTRACT(EPOCH FROM r.created_at) * 1000000)::bigint = $3 AND r.report_id > $4))
          ORDER BY r.created_at DESC, r.report_id
          LIMIT $5",
    )
    .bind(status)
    .bind(digits)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1).unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let (rows, next) = split_page(rows, limit, |r| {
        (r.get::<i64, _>("at_us"), r.get::<Uuid, _>("report_id"))
    });
    let items = rows
        .iter()
        .map(|r| PhoneReportItem {
            id: r.get("report_id"),
            phone_number: r.get("phone_number"),
            category: r.get("category"),
            description: r.get("description"),
            status: r.get("status"),
            created_at: r.get("created_at"),
            counted: r.get("counted"),
            reporter_ip: r.get("reporter_ip"),
            distinct_ips: r.get::<i32, _>("distinct_ips").into(),
            task_id: r.get("task_id"),
        })
        .collect();
    Ok(axum::Json(PhoneReportPage {
        items,
        next_cursor: next,
    }))
}

/// The number a report belongs to (404 for unknown or deleted reports, or a malformed id).
async fn report_number(s: &AppState, raw_id: &str) -> Result<(Uuid, String)> {
    let not_found = || ApiError::NotFound("no such phone report".into());
    let id = Uuid::parse_str(raw_id).map_err(|_| not_found())?;
    let number: Option<String> = sqlx::query_scalar(
        "SELECT phone_number FROM phone_reports WHERE report_id = $1 AND status <> 'deleted'",
    )
    .bind(id)
    .fetch_optional(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    Ok((id, number.ok_or_else(not_found)?))
}

async fn decide(
    s: &AppState,
    admin: &AdminSession,
    rid: RequestId,
    raw_id: &str,
    verb: &str,
) -> Result<(Uuid, String)> {
    let (report_id, e164) = report_number(s, raw_id).await?;
    let moderator = admin.username.clone();
    let cmd = match verb {
        "approve" => PhoneCommand::Approve {
            report_id,
            moderator,
        },
        "reject" => PhoneCommand::Reject {
            report_id,
            moderator,
        },
        _ => PhoneCommand::Delete {
            report_id,
            moderator,
        },
    };
    execute(
        &s.phones,
        &e164,
        cmd,
        &rid.context(format!("admin:{}", admin.username)),
    )
    .await?;
    Ok((report_id, e164))
}

#[utoipa::path(
    post,
    path = "/admin/phones/{id}/approve",
    operation_id = "approvePhoneReport",
    tag = "phones",
    summary = "Approve a phone report",
    security(("adminBearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The phone report id (a malformed id is 404).")
    ),
    responses(
        (status = 200, description = "The report is approved. The number becomes `dangerous`.", body = PhoneDecision),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `already_decided`, `conflict`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(report = %id))]
pub async fn approve(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<impl IntoResponse> {
    let (report_id, e164) = decide(&s, &admin, rid, &id, "approve").await?;
    Ok(axum::Json(PhoneDecision {
        id: report_id,
        phone_number: e164,
        status: "approved",
    }))
}

#[utoipa::path(
    post,
    path = "/admin/phones/{id}/reject",
    operation_id = "rejectPhoneReport",
    tag = "phones",
    summary = "Reject a phone report",
    security(("adminBearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The phone report id (a malformed id is 404).")
    ),
    responses(
        (status = 200, description = "The report is rejected.", body = PhoneDecision),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `already_decided`, `conflict`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(report = %id))]
pub async fn reject(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<impl IntoResponse> {
    let (report_id, e164) = decide(&s, &admin, rid, &id, "reject").await?;
    Ok(axum::Json(PhoneDecision {
        id: report_id,
        phone_number: e164,
        status: "rejected",
    }))
}

#[utoipa::path(
    delete,
    path = "/admin/phones/{id}",
    operation_id = "deletePhoneReport",
    tag = "phones",
    summary = "Delete a phone report",
    security(("adminBearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The phone report id (a malformed id is 404).")
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `conflict`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(report = %id))]
pub async fn delete(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    decide(&s, &admin, rid, &id, "delete").await?;
    Ok(StatusCode::NO_CONTENT)
}
