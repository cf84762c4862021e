//! Read queries shared by the JSON handlers and the server-rendered pages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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

#[derive(Deserialize, Default)]
pub struct BlacklistQuery {
    /// Words in the user's name or the ban's reason.
    pub q: Option<String>,
    /// Only users reported at least once in this category.
    pub category: Option<String>,
    /// Banned at or after (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Banned before (RFC 3339); after `from`.
    pub to: Option<DateTime<Utc>>,
    #[serde(flatten)]
    pub page: PageQuery,
}

#[derive(Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlacklistEntry {
    /// The platform user; `GET /report/blacklist/{userId}` and the page `/blacklist/{userId}`
    /// show this entry alone (a shareable link).
    pub user_id: String,
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

#[derive(Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Blacklist {
    pub blacklist: Vec<BlacklistEntry>,
    /// All permanent bans matching the search and filters (not just this page).
    pub count: i64,
    /// Latest review time among permanent bans, ms since the epoch; null when none.
    #[schema(required = true)]
    pub last_updated: Option<i64>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Answers of the public blacklist, kept for `BLACKLIST_CACHE_SECONDS` so that a popular list
/// costs one query per distinct search per interval. Bounded: it starts over past 1,024 entries.
pub struct BlacklistCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Arc<Blacklist>)>>,
}

const CACHE_ENTRIES: usize = 1024;

impl BlacklistCache {
    pub fn new(ttl: Duration) -> BlacklistCache {
        BlacklistCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    /// The `Cache-Control` of the public blacklist's answers: as long as this cache keeps them.
    pub fn cache_control(&self) -> String {
        match self.ttl.as_secs() {
            0 => "no-cache".to_owned(),
            secs => format!("public, max-age={secs}"),
        }
    }

    fn get(&self, key: &str) -> Option<Arc<Blacklist>> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, answer)| answer.clone())
    }

    fn put(&self, key: String, answer: Arc<Blacklist>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), answer));
    }
}

/// The public blacklist: `{blacklist, count, lastUpdated, nextCursor}`. Shared by the API and
/// the server-rendered page; served from [`BlacklistCache`] when asked again soon.
pub async fn blacklist(s: &AppState, query: &BlacklistQuery) -> Result<Arc<Blacklist>> {
    let key = format!(
        "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
        query.q, query.category, query.from, query.to, query.page.limit, query.page.cursor
    );
    if let Some(answer) = s.blacklist_cache.get(&key) {
        metrics::counter!("blacklist_cache_hits_total").increment(1);
        return Ok(answer);
    }
    let answer = Arc::new(blacklist_from_db(s, query).await?);
    s.blacklist_cache.put(key, answer.clone());
    Ok(answer)
}

async fn blacklist_from_db(s: &AppState, query: &BlacklistQuery) -> Result<Blacklist> {
    let (q, page) = (query.q.as_deref(), &query.page);
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if from >= to {
            return Err(ApiError::unprocessable(
                "invalid_period",
                "from must be before to",
            ));
        }
    }
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
            AND ($1::text IS NULL OR name ILIKE $1 OR banned_reason ILIKE $1)
            AND ($6::timestamptz IS NULL OR banned_at >= $6)
            AND ($7::timestamptz IS NULL OR banned_at < $7)
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
    .bind(query.from)
    .bind(query.to)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let (count, last_updated): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
        "SELECT count(*), max(reviewed_at) FROM platform_users
          WHERE ban_status = 'permanent'
            AND ($1::text IS NULL OR name ILIKE $1 OR banned_reason ILIKE $1)
            AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM user_reports r
                  WHERE r.reported_user_id = platform_users.user_id AND r.category = $2))
            AND ($3::timestamptz IS NULL OR banned_at >= $3)
            AND ($4::timestamptz IS NULL OR banned_at < $4)",
    )
    .bind(&pattern)
    .bind(category)
    .bind(query.from)
    .bind(query.to)
    .fetch_one(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let (rows, next) = split_page(rows, limit, |r| {
        let at: DateTime<Utc> = r.get("banned_at");
        (at.timestamp_millis(), r.get::<String, _>("user_id"))
    });
    let blacklist = rows.iter().map(entry).collect();
    Ok(Blacklist {
        blacklist,
        count,
        last_updated: ms(last_updated),
        next_cursor: next,
    })
}

fn entry(r: &sqlx::postgres::PgRow) -> BlacklistEntry {
    BlacklistEntry {
        user_id: r.get("user_id"),
        user_name: r.get("name"),
        user_selfie: r.get("picture"),
        user_video: r.get("video"),
        banned_at: ms(r.get("banned_at")),
        banned_reason: r.get("banned_reason"),
        report_count: r.get::<i32, _>("report_count").into(),
    }
}

/// One user on the public blacklist, with what they were reported for.
#[derive(Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlacklistProfile {
    #[serde(flatten)]
    pub entry: BlacklistEntry,
    /// Reports per category (only categories with reports).
    #[schema(value_type = BTreeMap<String, i64>)]
    pub reports_by_category: std::collections::BTreeMap<String, i64>,
    /// When the ban was confirmed, ms since the epoch.
    #[schema(required = true)]
    pub reviewed_at: Option<i64>,
}

/// The public entry of `user_id`: only a permanent ban is public (`None` for anyone else).
pub async fn blacklisted(s: &AppState, user_id: &str) -> Result<Option<BlacklistProfile>> {
    let Some(row) =
        sqlx::query("SELECT * FROM platform_users WHERE user_id = $1 AND ban_status = 'permanent'")
            .bind(user_id)
            .fetch_optional(&s.pool)
            .await?
    else {
        return Ok(None);
    };
    let categories: Vec<(String, i64)> = sqlx::query_as(
        "SELECT category, count(*) FROM user_reports WHERE reported_user_id = $1 GROUP BY category",
    )
    .bind(user_id)
    .fetch_all(&s.pool)
    .await?;
    Ok(Some(BlacklistProfile {
        entry: entry(&row),
        reports_by_category: categories.into_iter().collect(),
        reviewed_at: ms(row.get("reviewed_at")),
    }))
}
