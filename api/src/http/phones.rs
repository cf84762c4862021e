//! `/client/phones/*` (public) and `/admin/phones/*` (moderation).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use events::phone_number::Category;
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

use super::extract::{optional_text, Json, Query, RequestId};
use super::paging::{split_page, PageQuery};
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::client_ip::ClientIp;
use crate::commands::execute;
use crate::domain::phone_number::{normalize, PhoneCommand};
use crate::error::{ApiError, Result};
use crate::ratelimit::RateLimiter;

pub const MAX_DESCRIPTION_CHARS: usize = 2000;

/// 429 with `Retry-After` when `ip` is over `limiter`'s rate.
pub fn rate_limit(limiter: &RateLimiter, ip: std::net::IpAddr) -> Result<()> {
    limiter.check(ip).map_err(|retry_after_secs| {
        metrics::counter!("rate_limited_total").increment(1);
        ApiError::RateLimited { retry_after_secs }
    })
}

fn number(raw: &str, region: Option<&str>) -> Result<String> {
    normalize(raw, region)
        .map_err(|e| ApiError::unprocessable("invalid_phone_number", e.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportBody {
    phone_number: Option<String>,
    region: Option<String>,
    category: Option<String>,
    description: Option<String>,
    turnstile_token: Option<String>,
}

#[tracing::instrument(skip_all, fields(ip = %ip))]
pub async fn report(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    Json(body): Json<ReportBody>,
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
        axum::Json(json!({"reportId": report_id, "phoneNumber": e164, "status": "pending"})),
    ))
}

#[derive(Deserialize)]
pub struct LookupQuery {
    region: Option<String>,
}

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
        Some(r) => json!({
            "phoneNumber": e164,
            "status": r.get::<String, _>("status"),
            "approvedReports": r.get::<i32, _>("approved_reports"),
            "pendingReports": r.get::<i32, _>("pending_reports"),
            "categories": r.get::<Value, _>("categories"),
            "lastReportedAt": r.get::<Option<DateTime<Utc>>, _>("last_reported_at"),
            "flaggedCalls": r.get::<i32, _>("flagged_calls"),
        }),
        None => json!({
            "phoneNumber": e164,
            "status": "unknown",
            "approvedReports": 0,
            "pendingReports": 0,
            "categories": {},
            "lastReportedAt": null,
            "flaggedCalls": 0,
        }),
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
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<Uuid, _>("report_id"),
                "phoneNumber": r.get::<String, _>("phone_number"),
                "category": r.get::<String, _>("category"),
                "description": r.get::<Option<String>, _>("description"),
                "status": r.get::<String, _>("status"),
                "createdAt": r.get::<DateTime<Utc>, _>("created_at"),
                "counted": r.get::<bool, _>("counted"),
                "reporterIp": r.get::<Option<String>, _>("reporter_ip"),
                "distinctIps": r.get::<i32, _>("distinct_ips"),
                "taskId": r.get::<Option<Uuid>, _>("task_id"),
            })
        })
        .collect();
    Ok(axum::Json(json!({"items": items, "nextCursor": next})))
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

#[tracing::instrument(skip_all, fields(report = %id))]
pub async fn approve(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<impl IntoResponse> {
    let (report_id, e164) = decide(&s, &admin, rid, &id, "approve").await?;
    Ok(axum::Json(
        json!({"id": report_id, "phoneNumber": e164, "status": "approved"}),
    ))
}

#[tracing::instrument(skip_all, fields(report = %id))]
pub async fn reject(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Path(id): Path<String>,
) -> Result<impl IntoResponse> {
    let (report_id, e164) = decide(&s, &admin, rid, &id, "reject").await?;
    Ok(axum::Json(
        json!({"id": report_id, "phoneNumber": e164, "status": "rejected"}),
    ))
}

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
