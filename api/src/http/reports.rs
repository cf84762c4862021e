//! `/report/*`: user reports, automatic bans, reviews, the public blacklist.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use cqrs_es::{AggregateContext, EventStore};
use events::platform_user::{PlatformUserEvent, ReviewDecision};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

use super::extract::{optional_text, Json, Query, RequestId};
use super::paging::{split_page, PageQuery};
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::client_ip::ClientIp;
use crate::commands::execute_returning;
use crate::domain::platform_user::PlatformUserCommand;
use crate::error::{ApiError, Result};
use crate::session_auth::PlatformUser;

pub const MAX_REASON_CHARS: usize = 2000;

fn ms(t: Option<DateTime<Utc>>) -> Value {
    t.map(|t| json!(t.timestamp_millis()))
        .unwrap_or(Value::Null)
}

fn user_id(raw: &str, field: &str) -> Result<Uuid> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| ApiError::unprocessable("invalid_id", format!("{field} must be a UUID")))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportBody {
    reported_user_id: Option<String>,
    reason: Option<String>,
    room_id: Option<String>,
}

#[tracing::instrument(skip_all, fields(reporter = %user.id))]
pub async fn report_user(
    State(s): State<AppState>,
    user: PlatformUser,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    Json(body): Json<ReportBody>,
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
        room_id,
        at: Utc::now(),
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
        axum::Json(json!({
            "success": true,
            "reportId": report_id,
            "reportCount": report_count,
            "autoBanned": auto_banned,
            "message": message,
        })),
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReportView {
    report_id: Uuid,
    reported_user_id: String,
    reported_user_name: Option<String>,
    reporter_user_id: String,
    reporter_name: Option<String>,
    reporter_ip: Option<String>,
    reason: Option<String>,
    room_id: Option<Uuid>,
    timestamp: i64,
    report_count: i32,
}

const REPORT_SELECT: &str = "SELECT r.report_id, r.reported_user_id, ru.name AS reported_user_name,
        r.reporter_user_id, rp.name AS reporter_name, r.reporter_ip, r.reason, r.room_id,
        r.created_at, r.report_count
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
        timestamp: created.timestamp_millis(),
        report_count: r.get("report_count"),
    }
}

fn ban_record(r: &sqlx::postgres::PgRow) -> Value {
    json!({
        "userId": r.get::<String, _>("user_id"),
        "userName": r.get::<Option<String>, _>("name"),
        "userSelfie": r.get::<Option<String>, _>("picture"),
        "userVideo": r.get::<Option<String>, _>("video"),
        "banStatus": r.get::<String, _>("ban_status"),
        "bannedAt": ms(r.get("banned_at")),
        "bannedReason": r.get::<Option<String>, _>("banned_reason"),
        "reportCount": r.get::<i32, _>("report_count"),
        "reviewStatus": r.get::<Option<String>, _>("review_status"),
        "reviewedAt": ms(r.get("reviewed_at")),
    })
}

/// Reports shown with each pending user (the newest); `reportCount` says how many there are and
/// `GET /report/reports?userId=` pages through all of them.
const REPORTS_PER_PENDING_USER: i64 = 20;

/// `GET /report/pending`: paged (oldest ban first), like every list.
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
    let pending: Vec<Value> = users
        .iter()
        .map(|u| {
            let id: String = u.get("user_id");
            let mut record = ban_record(u);
            let theirs: Vec<ReportView> = reports
                .iter()
                .filter(|r| r.get::<String, _>("reported_user_id") == id)
                .map(report_view)
                .collect();
            record["reports"] = json!(theirs);
            record
        })
        .collect();
    Ok(axum::Json(
        json!({"count": pending.len(), "pending": pending, "nextCursor": next}),
    ))
}

#[derive(Deserialize)]
pub struct ReviewBody {
    decision: Option<String>,
}

#[tracing::instrument(skip_all, fields(user = %raw_id))]
pub async fn review(
    State(s): State<AppState>,
    admin: AdminSession,
    Path(raw_id): Path<String>,
    rid: RequestId,
    Json(body): Json<ReviewBody>,
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
    Ok(axum::Json(
        json!({"success": true, "userId": id, "decision": label, "message": message}),
    ))
}

#[derive(Deserialize)]
pub struct BlacklistQuery {
    pub q: Option<String>,
    #[serde(flatten)]
    pub page: PageQuery,
}

/// The public blacklist: `{blacklist, count, lastUpdated, nextCursor}`. Shared by the API and
/// the server-rendered page.
pub async fn blacklist_json(s: &AppState, q: Option<&str>, page: &PageQuery) -> Result<Value> {
    let limit = page.limit()?;
    let after: Option<(i64, String)> = page.cursor()?;
    let q = q
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(|q| q.chars().take(200).collect::<String>());
    let pattern = q.as_ref().map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let rows = sqlx::query(
        "SELECT * FROM platform_users
          WHERE ban_status = 'permanent'
            AND ($1::text IS NULL OR name ILIKE $1)
            AND ($2::bigint IS NULL OR (EXTRACT(EPOCH FROM banned_at) * 1000)::bigint < $2
                 OR ((EXTRACT(EPOCH FROM banned_at) * 1000)::bigint = $2 AND user_id > $3))
          ORDER BY banned_at DESC, user_id
          LIMIT $4",
    )
    .bind(&pattern)
    .bind(after.as_ref().map(|a| a.0))
    .bind(after.as_ref().map(|a| a.1.clone()).unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let (count, last_updated): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), max(reviewed_at) FROM platform_users
          WHERE ban_status = 'permanent' AND ($1::text IS NULL OR name ILIKE $1)",
    )
    .bind(&pattern)
    .fetch_one(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let (rows, next) = split_page(rows, limit, |r| {
        let at: DateTime<Utc> = r.get("banned_at");
        (at.timestamp_millis(), r.get::<String, _>("user_id"))
    });
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "userName": r.get::<Option<String>, _>("name"),
                "userSelfie": r.get::<Option<String>, _>("picture"),
                "userVideo": r.get::<Option<String>, _>("video"),
                "bannedAt": ms(r.get("banned_at")),
                "bannedReason": r.get::<Option<String>, _>("banned_reason"),
                "reportCount": r.get::<i32, _>("report_count"),
            })
        })
        .collect();
    Ok(json!({
        "blacklist": items,
        "count": count,
        "lastUpdated": ms(last_updated),
        "nextCursor": next,
    }))
}

#[tracing::instrument(skip_all)]
pub async fn blacklist(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Query(query): Query<BlacklistQuery>,
) -> Result<impl IntoResponse> {
    super::phones::rate_limit(&s.public_reads, ip)?;
    Ok(axum::Json(
        blacklist_json(&s, query.q.as_deref(), &query.page).await?,
    ))
}

/// Under the public read limit per IP, checked before the session is read (and recorded), so a
/// flood of check-bans cannot feed a user's IP history.
#[tracing::instrument(skip_all)]
pub async fn check_ban(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    request: axum::extract::Request,
) -> Result<impl IntoResponse> {
    super::phones::rate_limit(&s.public_reads, ip)?;
    let (mut parts, _) = request.into_parts();
    let user = <PlatformUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(
        &mut parts, &s,
    )
    .await?;
    let row = sqlx::query("SELECT * FROM platform_users WHERE user_id = $1")
        .bind(&user.id)
        .fetch_optional(&s.pool)
        .await
        .map_err(ApiError::from_db)?;
    let status = row
        .as_ref()
        .map(|r| r.get::<String, _>("ban_status"))
        .unwrap_or_else(|| "none".into());
    let is_banned = status == "temporary" || status == "permanent";
    let record = row
        .filter(|_| status != "none")
        .map(|r| ban_record(&r))
        .unwrap_or(Value::Null);
    Ok(axum::Json(
        json!({"isBanned": is_banned, "banStatus": status, "banRecord": record}),
    ))
}

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
    Ok(axum::Json(json!({
        "totalReports": r.get::<i64, _>("total_reports"),
        "totalBans": r.get::<i64, _>("total_bans"),
        "pendingReviews": r.get::<i64, _>("pending"),
        "permanentBans": r.get::<i64, _>("permanent"),
        "temporaryBans": r.get::<i64, _>("temporary"),
        "vindicated": r.get::<i64, _>("vindicated"),
        "reportsLast24h": r.get::<i64, _>("reports_24h"),
        "bannedIps": r.get::<i64, _>("ip_bans"),
        "reviewsDecided": reviews,
        "vindicationRate": if reviews > 0 { vindications as f64 / reviews as f64 } else { 0.0 },
        "avgReviewSeconds": r.get::<Option<f64>, _>("avg_review"),
        "banEvasionAttempts": s.evasion.total(&s.pool).await.map_err(ApiError::from_db)?,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportsQuery {
    user_id: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

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
    let items: Vec<ReportView> = rows.iter().map(report_view).collect();
    Ok(axum::Json(
        json!({"reports": items, "count": items.len(), "nextCursor": next}),
    ))
}
