//! `/admin/tasks`, `/admin/queue/stats`, retries.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

use super::extract::{Query, RequestId};
use super::paging::{split_page, PageQuery};
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::commands::execute;
use crate::domain::voice_task::VoiceTaskCommand;
use crate::error::{ApiError, Result};

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[tracing::instrument(skip_all)]
pub async fn list(
    State(s): State<AppState>,
    _admin: AdminSession,
    Query(q): Query<ListQuery>,
) -> Result<impl IntoResponse> {
    let limit = q.page.limit()?;
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(st @ ("queued" | "processing" | "completed" | "failed")) => Some(st.to_owned()),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_status",
                "status must be queued, processing, completed or failed",
            ))
        }
    };
    let after: Option<(i64, Uuid)> = q.page.cursor()?;
    let rows = sqlx::query(
        "SELECT *, (EXTRACT(EPOCH FROM submitted_at) * 1000000)::bigint AS at_us FROM voice_tasks
          WHERE status <> 'authorized' AND ($1::text IS NULL OR status = $1)
            AND ($2::bigint IS NULL OR (EXTRACT(EPOCH FROM submitted_at) * 1000000)::bigint < $2
                 OR ((EXTRACT(EPOCH FROM submitted_at) * 1000000)::bigint = $2 AND task_id > $3))
          ORDER BY submitted_at DESC, task_id LIMIT $4",
    )
    .bind(status)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1).unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let (rows, next) = split_page(rows, limit, |r| {
        (r.get::<i64, _>("at_us"), r.get::<Uuid, _>("task_id"))
    });
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "taskId": r.get::<Uuid, _>("task_id"),
                "status": r.get::<String, _>("status"),
                "attempts": r.get::<i32, _>("attempts"),
                "submittedAt": r.get::<Option<DateTime<Utc>>, _>("submitted_at"),
                "startedAt": r.get::<Option<DateTime<Utc>>, _>("started_at"),
                "completedAt": r.get::<Option<DateTime<Utc>>, _>("completed_at"),
                "workerId": r.get::<Option<Uuid>, _>("worker_id"),
                "callerNumber": r.get::<Option<String>, _>("caller_number"),
                "result": r.get::<Option<Value>, _>("result"),
                "previousResults": r.get::<Value, _>("previous_results"),
                "reanalysisPending": r.get::<Option<Uuid>, _>("reanalysis_batch").is_some(),
                "error": r.get::<Option<String>, _>("error"),
            })
        })
        .collect();
    Ok(axum::Json(json!({"items": items, "nextCursor": next})))
}

#[tracing::instrument(skip_all)]
pub async fn stats(State(s): State<AppState>, _admin: AdminSession) -> Result<impl IntoResponse> {
    let r = sqlx::query(
        "SELECT count(*) FILTER (WHERE status = 'queued') AS queued,
                count(*) FILTER (WHERE status = 'processing') AS processing,
                count(*) FILTER (WHERE status = 'completed') AS completed,
                count(*) FILTER (WHERE status = 'failed') AS failed,
                (SELECT avg(EXTRACT(EPOCH FROM completed_at - started_at))::float8 FROM (
                    SELECT completed_at, started_at FROM voice_tasks
                     WHERE status = 'completed' AND started_at IS NOT NULL
                     ORDER BY completed_at DESC LIMIT 50) recent) AS avg_seconds,
                EXTRACT(EPOCH FROM now() - min(queued_at) FILTER (WHERE status = 'queued'))::float8 AS oldest,
                (SELECT count(*) FROM worker_heartbeats h JOIN workers w USING (worker_id)
                  WHERE w.revoked_at IS NULL AND h.last_seen_at > now() - interval '15 seconds') AS online
           FROM voice_tasks WHERE status <> 'authorized'",
    )
    .fetch_one(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    Ok(axum::Json(json!({
        "queued": r.get::<i64, _>("queued"),
        "processing": r.get::<i64, _>("processing"),
        "completed": r.get::<i64, _>("completed"),
        "failed": r.get::<i64, _>("failed"),
        "workersOnline": r.get::<i64, _>("online"),
        "avgProcessingSeconds": r.get::<Option<f64>, _>("avg_seconds").unwrap_or(0.0),
        "oldestQueuedAgeSeconds": r.get::<Option<f64>, _>("oldest").unwrap_or(0.0),
    })))
}

async fn requeue(s: &AppState, admin: &AdminSession, id: Uuid, rid: Option<String>) -> Result<()> {
    let ctx = crate::commands::CommandContext::new(format!("admin:{}", admin.username), rid);
    execute(
        &s.voice_tasks,
        &id.to_string(),
        VoiceTaskCommand::Requeue {
            by: admin.username.clone(),
        },
        &ctx,
    )
    .await?;
    metrics::counter!("voice_tasks_requeued_total").increment(1);
    Ok(())
}

#[tracing::instrument(skip_all, fields(task = %raw))]
pub async fn retry(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse> {
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::NotFound("no such task".into()))?;
    match requeue(&s, &admin, id, rid.0).await {
        Ok(()) => Ok((
            StatusCode::ACCEPTED,
            axum::Json(json!({"taskId": id, "status": "queued"})),
        )),
        Err(ApiError::Unprocessable("upload_missing", _)) => {
            Err(ApiError::NotFound("no such task".into()))
        }
        Err(ApiError::Conflict(_, msg)) => Err(ApiError::Conflict("not_failed", msg)),
        Err(e) => Err(e),
    }
}

#[tracing::instrument(skip_all)]
pub async fn retry_all_failed(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
) -> Result<impl IntoResponse> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT task_id FROM voice_tasks WHERE status = 'failed' ORDER BY completed_at",
    )
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let mut requeued = 0;
    for id in ids {
        // A task another admin already requeued is skipped, not an error.
        match requeue(&s, &admin, id, rid.0.clone()).await {
            Ok(()) => requeued += 1,
            Err(ApiError::Conflict(..)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(axum::Json(json!({"requeued": requeued})))
}

/// Which completed tasks a re-analysis takes (every field optional; all given must hold).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReanalyseBody {
    /// Tasks whose analyzer rules version is below this one (`2026.11.2`), or unknown.
    analyzer_version_below: Option<String>,
    /// Completed at or after.
    from: Option<DateTime<Utc>>,
    /// Completed before.
    to: Option<DateTime<Utc>>,
    /// scam | suspicious | safe | inconclusive
    verdict: Option<String>,
    /// At most this many tasks (default 1000, at most 10000), oldest first.
    limit: Option<i64>,
}

/// Largest batch.
const MAX_REANALYSIS: i64 = 10_000;

/// `POST /admin/tasks/reanalyse`: completed tasks matching the filter are analysed again with
/// today's analyzer (their stored recordings); each new result is a `TaskReanalysed` event beside
/// the old result. Tasks with a re-analysis already running are left as they are.
#[tracing::instrument(skip_all)]
pub async fn reanalyse(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    super::extract::Json(body): super::extract::Json<ReanalyseBody>,
) -> Result<impl IntoResponse> {
    let below = match body.analyzer_version_below.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => {
            let ok = v.len() <= 32
                && v.split('.').all(|p| {
                    !p.is_empty() && p.len() <= 9 && p.bytes().all(|b| b.is_ascii_digit())
                });
            if !ok {
                return Err(ApiError::unprocessable(
                    "invalid_version",
                    "analyzerVersionBelow must look like 2026.11.2 (numbers and dots)",
                ));
            }
            Some(v.to_owned())
        }
    };
    let verdict = match body.verdict.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(v @ ("scam" | "suspicious" | "safe" | "inconclusive")) => Some(v.to_owned()),
        Some(_) => {
            return Err(ApiError::unprocessable(
                "invalid_verdict",
                "verdict must be scam, suspicious, safe or inconclusive",
            ))
        }
    };
    if let (Some(from), Some(to)) = (body.from, body.to) {
        if from >= to {
            return Err(ApiError::unprocessable(
                "invalid_period",
                "from must be before to",
            ));
        }
    }
    let limit = body.limit.unwrap_or(1000);
    if !(1..=MAX_REANALYSIS).contains(&limit) {
        return Err(ApiError::unprocessable(
            "invalid_limit",
            "limit must be between 1 and 10000",
        ));
    }
    // Versions compare part by part as numbers (2026.11.10 > 2026.11.9); a result without a
    // rules version predates versioned results and is always below.
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT task_id FROM voice_tasks
          WHERE status = 'completed' AND reanalysis_batch IS NULL
            AND ($1::text IS NULL
                 OR result->'analyzer'->>'rulesVersion' IS NULL
                 OR result->'analyzer'->>'rulesVersion' !~ '^[0-9]{1,9}(\\.[0-9]{1,9})*$'
                 OR string_to_array(result->'analyzer'->>'rulesVersion', '.')::bigint[]
                    < string_to_array($1, '.')::bigint[])
            AND ($2::timestamptz IS NULL OR completed_at >= $2)
            AND ($3::timestamptz IS NULL OR completed_at < $3)
            AND ($4::text IS NULL OR result->>'verdict' = $4)
          ORDER BY completed_at LIMIT $5",
    )
    .bind(&below)
    .bind(body.from)
    .bind(body.to)
    .bind(&verdict)
    .bind(limit)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let batch_id = Uuid::new_v4();
    let ctx = crate::commands::CommandContext::new(format!("admin:{}", admin.username), rid.0);
    let mut requested = 0;
    for id in &ids {
        let cmd = VoiceTaskCommand::RequestReanalysis {
            batch_id,
            by: admin.username.clone(),
        };
        // A task that changed meanwhile (another batch took it) is skipped, not an error.
        match execute(&s.voice_tasks, &id.to_string(), cmd, &ctx).await {
            Ok(_) => requested += 1,
            Err(
                crate::commands::CommandError::Domain(_) | crate::commands::CommandError::Conflict,
            ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    metrics::counter!("voice_tasks_reanalysis_requested_total").increment(requested as u64);
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "batchId": if requested > 0 { Some(batch_id) } else { None },
            "matched": ids.len(),
            "requested": requested,
        })),
    ))
}

/// `GET /admin/tasks/reanalyses`: the latest re-analysis batches and their progress.
#[tracing::instrument(skip_all)]
pub async fn reanalyses(
    State(s): State<AppState>,
    _admin: AdminSession,
) -> Result<impl IntoResponse> {
    let rows = sqlx::query("SELECT * FROM reanalysis_batches ORDER BY requested_at DESC LIMIT 20")
        .fetch_all(&s.pool)
        .await
        .map_err(ApiError::from_db)?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let (total, done, failed) = (
                r.get::<i32, _>("total"),
                r.get::<i32, _>("done"),
                r.get::<i32, _>("failed"),
            );
            json!({
                "batchId": r.get::<Uuid, _>("batch_id"),
                "requestedBy": r.get::<String, _>("requested_by"),
                "requestedAt": r.get::<DateTime<Utc>, _>("requested_at"),
                "total": total,
                "done": done,
                "failed": failed,
                "pending": (total - done - failed).max(0),
                "changedVerdict": r.get::<i32, _>("changed_verdict"),
                "updatedAt": r.get::<DateTime<Utc>, _>("updated_at"),
            })
        })
        .collect();
    Ok(axum::Json(json!({"items": items})))
}
