//! The right of access: everything held about a platform user, as JSON — for the user with
//! their session token (`GET /report/my-data`, reachable from banned IPs) and for an admin about
//! any user (`GET /admin/subjects/platform_user/{id}/data`).
//!
//! The export names nobody else: the reports against the user carry their category, reason and
//! time, never the reporter's id or address.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;

use super::openapi::ErrorBody;
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::client_ip::ClientIp;
use crate::error::{ApiError, Result};

/// The subjects an export (and, later, an erasure) is about.
pub const SUBJECT_KINDS: [&str; 1] = ["platform_user"];

#[derive(Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MyData {
    pub user_id: String,
    pub generated_at: DateTime<Utc>,
    /// Null when the user never made a request with a session token and was never reported.
    #[schema(required = true)]
    pub profile: Option<HeldProfile>,
    /// The addresses held for the user now.
    pub ips: Vec<HeldIp>,
    /// The addresses banned now because of this user's ban.
    pub banned_ips: Vec<String>,
    /// Every decision on the user's bans, oldest first.
    pub ban_history: Vec<HeldReview>,
    /// Reports against the user (without who filed them).
    pub reports_against: Vec<HeldReport>,
    /// Reports the user filed.
    pub reports_filed: Vec<HeldReport>,
    pub appeals: Vec<HeldAppeal>,
    /// Email addresses the user gave (with an appeal, or to hear a report's outcome), kept in
    /// the event store only.
    pub contact_emails: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldProfile {
    #[schema(required = true)]
    pub name: Option<String>,
    #[schema(required = true)]
    pub picture: Option<String>,
    #[schema(required = true)]
    pub video: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    #[schema(value_type = super::openapi::BanStatus)]
    pub ban_status: String,
    #[schema(required = true)]
    pub banned_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub banned_reason: Option<String>,
    /// Unique reporters so far.
    pub report_count: i64,
    /// How many times the user was banned.
    pub ban_count: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldIp {
    pub ip: String,
    pub first_seen_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldReview {
    /// `permanent` or `vindicated`.
    pub decision: String,
    pub banned_at: DateTime<Utc>,
    pub reviewed_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldReport {
    pub report_id: Uuid,
    /// The reported user (reports filed) or the user themself (reports against).
    pub reported_user_id: String,
    pub category: String,
    #[schema(required = true)]
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldAppeal {
    pub appeal_id: Uuid,
    pub text: String,
    /// `pending`, `upheld` or `overturned`.
    pub status: String,
    pub submitted_at: DateTime<Utc>,
    #[schema(required = true)]
    pub decided_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub note: Option<String>,
}

/// Everything held about `user` (`None`: nothing at all).
pub async fn export(pool: &PgPool, user: &str) -> Result<Option<MyData>> {
    let profile = sqlx::query("SELECT * FROM platform_users WHERE user_id = $1")
        .bind(user)
        .fetch_optional(pool)
        .await?
        .map(|r| HeldProfile {
            name: r.get("name"),
            picture: r.get("picture"),
            video: r.get("video"),
            first_seen_at: r.get("first_seen_at"),
            ban_status: r.get("ban_status"),
            banned_at: r.get("banned_at"),
            banned_reason: r.get("banned_reason"),
            report_count: r.get::<i32, _>("report_count").into(),
            ban_count: r.get::<i32, _>("ban_count").into(),
        });
    let ips: Vec<HeldIp> = sqlx::query_as::<_, (String, DateTime<Utc>)>(
        "SELECT ip, first_seen_at FROM user_ips WHERE user_id = $1 ORDER BY first_seen_at, ip",
    )
    .bind(user)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(ip, first_seen_at)| HeldIp { ip, first_seen_at })
    .collect();
    let banned_ips: Vec<String> =
        sqlx::query_scalar("SELECT ip FROM ip_bans WHERE user_id = $1 ORDER BY ip")
            .bind(user)
            .fetch_all(pool)
            .await?;
    let ban_history: Vec<HeldReview> = sqlx::query_as::<_, (String, DateTime<Utc>, DateTime<Utc>)>(
        "SELECT decision, banned_at, reviewed_at FROM ban_reviews WHERE user_id = $1 ORDER BY reviewed_at",
    )
    .bind(user)
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|(decision, banned_at, reviewed_at)| HeldReview {
        decision,
        banned_at,
        reviewed_at,
    })
    .collect();
    let reports = |column: &'static str| async move {
        let rows = sqlx::query(&format!(
            "SELECT report_id, reported_user_id, category, reason, created_at FROM user_reports
              WHERE {column} = $1 ORDER BY created_at, report_id"
        ))
        .bind(user)
        .fetch_all(pool)
        .await?;
        Ok::<_, ApiError>(
            rows.iter()
                .map(|r| HeldReport {
                    report_id: r.get("report_id"),
                    reported_user_id: r.get("reported_user_id"),
                    category: r.get("category"),
                    reason: r.get("reason"),
                    created_at: r.get("created_at"),
                })
                .collect::<Vec<_>>(),
        )
    };
    let reports_against = reports("reported_user_id").await?;
    let reports_filed = reports("reporter_user_id").await?;
    let appeals: Vec<HeldAppeal> = sqlx::query(
        "SELECT appeal_id, text, status, created_at, decided_at, note FROM ban_appeals
          WHERE user_id = $1 ORDER BY created_at",
    )
    .bind(user)
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| HeldAppeal {
        appeal_id: r.get("appeal_id"),
        text: r.get("text"),
        status: r.get("status"),
        submitted_at: r.get("created_at"),
        decided_at: r.get("decided_at"),
        note: r.get("note"),
    })
    .collect();
    // Addresses are only in the event store: with the user's appeals, and with the reports they
    // filed (those live in the reported users' histories: found through the read model, so the
    // query reads those histories only, by their index).
    let contact_emails: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT email FROM (
            SELECT payload->'BanAppealed'->>'email' AS email FROM events
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND event_type = 'BanAppealed'
            UNION ALL
            SELECT payload->'ReportFiled'->>'email' FROM events
             WHERE aggregate_type = $1 AND event_type = 'ReportFiled'
               AND aggregate_id IN (SELECT reported_user_id FROM user_reports
                                     WHERE reporter_user_id = $2)
               AND payload->'ReportFiled'->>'reporterId' = $2
         ) e WHERE email IS NOT NULL ORDER BY email",
    )
    .bind(events::platform_user::AGGREGATE_TYPE)
    .bind(user)
    .fetch_all(pool)
    .await?;
    let nothing = profile.is_none()
        && reports_filed.is_empty()
        && reports_against.is_empty()
        && contact_emails.is_empty();
    if nothing {
        return Ok(None);
    }
    Ok(Some(MyData {
        user_id: user.to_owned(),
        generated_at: Utc::now(),
        profile,
        ips,
        banned_ips,
        ban_history,
        reports_against,
        reports_filed,
        appeals,
        contact_emails,
    }))
}

/// A JSON download: `Content-Disposition: attachment`.
fn download(user: &str, data: MyData) -> impl IntoResponse {
    (
        [
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"blacklist-data-{user}.json\""),
            ),
            (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        axum::Json(data),
    )
}

#[utoipa::path(
    get,
    path = "/report/my-data",
    operation_id = "getMyData",
    tag = "privacy",
    summary = "Everything held about the caller (right of access)",
    description = "The session user's profile, addresses held now, bans and their reviews, reports against them (without who filed them), reports they filed, appeals and the email addresses they gave. A download (`Content-Disposition: attachment`, `Cache-Control: no-store`). Reachable from banned IPs; rate limited per IP with the public reads.",
    security(("sessionBearer" = [])),
    responses(
        (status = 200, description = "The export.", body = MyData),
        (status = 401, description = "Missing or invalid session token. Codes: `missing_token`, `invalid_token`, `sessions_not_configured`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn mine(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    request: axum::extract::Request,
) -> Result<impl IntoResponse> {
    let (mut parts, _) = request.into_parts();
    let user = super::extract::limited_session_user(&s, &s.public_reads, ip, &mut parts).await?;
    // A user whose request was just recorded may not be projected yet: an empty export then.
    let data = export(&s.pool, &user.id).await?.unwrap_or_else(|| MyData {
        user_id: user.id.clone(),
        generated_at: Utc::now(),
        ..Default::default()
    });
    metrics::counter!("data_exports_total", "by" => "subject").increment(1);
    Ok(download(&user.id, data))
}

#[utoipa::path(
    get,
    path = "/admin/subjects/{kind}/{id}/data",
    operation_id = "getSubjectData",
    tag = "privacy",
    summary = "Everything held about a subject (for an access request)",
    description = "The same export as `GET /report/my-data`, for any platform user. `kind` is `platform_user`.",
    security(("adminBearer" = [])),
    params(
        ("kind" = String, Path, description = "`platform_user`."),
        ("id" = Uuid, Path, description = "The subject's id.")
    ),
    responses(
        (status = 200, description = "The export.", body = MyData),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "Nothing is held about this subject, or no such kind. Codes: `not_found`.", body = ErrorBody),
        (status = 422, description = "Codes: `invalid_id`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(admin = %admin.username))]
pub async fn subject(
    State(s): State<AppState>,
    admin: AdminSession,
    Path((kind, id)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    if !SUBJECT_KINDS.contains(&kind.as_str()) {
        return Err(ApiError::NotFound(format!("no subject kind {kind}")));
    }
    let id = Uuid::parse_str(id.trim())
        .map_err(|_| ApiError::unprocessable("invalid_id", "id must be a UUID"))?
        .to_string();
    let data = export(&s.pool, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("nothing is held about {kind} {id}")))?;
    tracing::info!(subject = %id, "data export by an admin");
    metrics::counter!("data_exports_total", "by" => "admin").increment(1);
    Ok(download(&id, data))
}
