//! Read queries shared by the JSON handlers and the server-rendered pages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::{ApiError, Result};
use crate::paging::{split_page, PageQuery};

/// Milliseconds since the epoch, as the reports API counts time.
pub fn ms(t: Option<DateTime<Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}

#[derive(Deserialize)]
pub struct BlacklistQuery {
    pub q: Option<String>,
    /// Only users reported at least once in this category.
    pub category: Option<String>,
    #[serde(flatten)]
    pub page: PageQuery,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlacklistEntry {
    #[schema(required = true)]
    pub user_name: Option<String>,
    #[schema(required = true)]
    pub user_selfie: Option<String>,
    #[schema(required = true)]
    pub user_video: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[schema(required = true)]
    pub banned_at: Option<i64>,
    #[schema(required = true)]
    pub banned_reason: Option<String>,
    pub report_count: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Blacklist {
    pub blacklist: Vec<BlacklistEntry>,
    /// All permanent bans matching `q` (not just this page).
    pub count: i64,
    /// Latest review time among permanent bans, ms since the epoch; null when none.
    #[schema(required = true)]
    pub last_updated: Option<i64>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The public blacklist: `{blacklist, count, lastUpdated, nextCursor}`. Shared by the API and
/// the server-rendered page.
pub async fn blacklist(s: &AppState, query: &BlacklistQuery) -> Result<Blacklist> {
    let (q, page) = (query.q.as_deref(), &query.page);
    let category = match query
        .category
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(raw) => Some(
            events::platform_user::ReportCategory::parse(raw)
                .ok_or_else(|| {
                    ApiError::unprocessable("invalid_category", "no such report category")
                })?
                .as_str(),
        ),
    };
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
            AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM user_reports r
                  WHERE r.reported_user_id = platform_users.user_id AND r.category = $5))
          ORDER BY banned_at DESC, user_id
          LIMIT $4",
    )
    .bind(&pattern)
    .bind(after.as_ref().map(|a| a.0))
    .bind(after.as_ref().map(|a| a.1.clone()).unwrap_or_default())
    .bind(limit + 1)
    .bind(category)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let (count, last_updated): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), max(reviewed_at) FROM platform_users
          WHERE ban_status = 'permanent' AND ($1::text IS NULL OR name ILIKE $1)
            AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM user_reports r
                  WHERE r.reported_user_id = platform_users.user_id AND r.category = $2))",
    )
    .bind(&pattern)
    .bind(category)
    .fetch_one(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let (rows, next) = split_page(rows, limit, |r| {
        let at: DateTime<Utc> = r.get("banned_at");
        (at.timestamp_millis(), r.get::<String, _>("user_id"))
    });
    let blacklist = rows
        .iter()
        .map(|r| BlacklistEntry {
            user_name: r.get("name"),
            user_selfie: r.get("picture"),
            user_video: r.get("video"),
            banned_at: ms(r.get("banned_at")),
            banned_reason: r.get("banned_reason"),
            report_count: r.get::<i32, _>("report_count").into(),
        })
        .collect();
    Ok(Blacklist {
        blacklist,
        count,
        last_updated: ms(last_updated),
        next_cursor: next,
    })
}
