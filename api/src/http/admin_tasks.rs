//! `/admin/tasks`, `/admin/queue/stats`, retries.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use events::task::AnalysisResult;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{Query, RequestId};
use super::openapi::{constant, ErrorBody, TaskStatus};
use super::tasks::PreviousResult;
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::commands::execute;
use crate::domain::voice_task::VoiceTaskCommand;
use crate::error::{ApiError, Result};
use crate::paging::{split_page, PageQuery};

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminTaskItem {
    pub task_id: Uuid,
    #[schema(value_type = TaskStatus)]
    pub status: String,
    pub attempts: i64,
    #[schema(required = true)]
    pub submitted_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub completed_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub worker_id: Option<Uuid>,
    /// E.164 as submitted (a string, unlike `result.callerNumber`).
    #[schema(required = true)]
    pub caller_number: Option<String>,
    #[schema(value_type = Option<AnalysisResult>, required = true)]
    pub result: Option<Value>,
    /// Earlier results replaced by re-analyses, oldest first (empty when never re-analysed).
    #[schema(value_type = Vec<PreviousResult>)]
    pub previous_results: Value,
    /// A re-analysis is running (the task stays `completed` meanwhile).
    pub reanalysis_pending: bool,
    #[schema(required = true)]
    pub error: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminTaskPage {
    pub items: Vec<AdminTaskItem>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryAccepted {
    pub task_id: Uuid,
    #[schema(value_type = Queued, inline)]
    pub status: &'static str,
}

constant!(Queued, "queued");

#[derive(Serialize, ToSchema)]
pub struct RequeuedCount {
    #[schema(minimum = 0)]
    pub requeued: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReanalysisAccepted {
    /// The batch (see `GET /admin/tasks/reanalyses`); null when no task was requested.
    #[schema(required = true)]
    pub batch_id: Option<Uuid>,
    /// Completed tasks the filter matched.
    #[schema(minimum = 0)]
    pub matched: i64,
    /// Of those, re-analyses requested (a task taken by another batch meanwhile is skipped).
    #[schema(minimum = 0)]
    pub requested: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReanalysisBatch {
    pub batch_id: Uuid,
    /// The admin who asked.
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    /// Tasks in the batch.
    #[schema(minimum = 0)]
    pub total: i64,
    /// Re-analysed (`TaskReanalysed`).
    #[schema(minimum = 0)]
    pub done: i64,
    /// Re-analyses that failed (`TaskReanalysisFailed`); those tasks keep their earlier result.
    #[schema(minimum = 0)]
    pub failed: i64,
    /// total − done − failed.
    #[schema(minimum = 0)]
    pub pending: i64,
    /// Re-analysed tasks whose verdict differs from the one before.
    #[schema(minimum = 0)]
    pub changed_verdict: i64,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ReanalysisBatchList {
    /// The latest 20 batches, newest first.
    pub items: Vec<ReanalysisBatch>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    pub queued: i64,
    pub processing: i64,
    pub completed: i64,
    pub failed: i64,
    pub workers_online: i64,
    /// Over the last 50 completed tasks; 0 without history.
    pub avg_processing_seconds: f64,
    /// 0 when nothing is queued.
    pub oldest_queued_age_seconds: f64,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Scam,
    Suspicious,
    Safe,
    Inconclusive,
}

#[derive(Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

#[utoipa::path(
    get,
    path = "/admin/tasks",
    operation_id = "listTasks",
    tag = "queue",
    summary = "List voice tasks",
    security(("adminBearer" = [])),
    params(
        ("status" = Option<TaskStatus>, Query, description = "Filter by task status."),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50).", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page's `nextCursor`.")
    ),
    responses(
        (status = 200, description = "A page of tasks, newest submission first.", body = AdminTaskPage),
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
    let items = rows
        .iter()
        .map(|r| AdminTaskItem {
            task_id: r.get("task_id"),
            status: r.get("status"),
            attempts: r.get::<i32, _>("attempts").into(),
            submitted_at: r.get("submitted_at"),
            started_at: r.get("started_at"),
            completed_at: r.get("completed_at"),
            worker_id: r.get("worker_id"),
            caller_number: r.get("caller_number"),
            result: r.get("result"),
            previous_results: r.get("previous_results"),
            reanalysis_pending: r.get::<Option<Uuid>, _>("reanalysis_batch").is_some(),
            error: r.get("error"),
        })
        .collect();
    Ok(axum::Json(AdminTaskPage {
        items,
        next_cursor: next,
    }))
}

#[utoipa::path(
    get,
    path = "/admin/queue/stats",
    operation_id = "getQueueStats",
    tag = "queue",
    summary = "Queue statistics",
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "Queue statistics.", body = QueueStats),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
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
    Ok(axum::Json(QueueStats {
        queued: r.get("queued"),
        processing: r.get("processing"),
        completed: r.get("completed"),
        failed: r.get("failed"),
        workers_online: r.get("online"),
        avg_processing_seconds: r.get::<Option<f64>, _>("avg_seconds").unwrap_or(0.0),
        oldest_queued_age_seconds: r.get::<Option<f64>, _>("oldest").unwrap_or(0.0),
    }))
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

#[utoipa::path(
    post,
    path = "/admin/tasks/{id}/retry",
    operation_id = "retryTask",
    tag = "queue",
    summary = "Requeue a failed task",
    description = "409 `not_failed` unless the task failed.",
    security(("adminBearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The task id (a malformed id is 404).")
    ),
    responses(
        (status = 202, description = "Requeued.", body = RetryAccepted),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `not_failed`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
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
            axum::Json(RetryAccepted {
                task_id: id,
                status: "queued",
            }),
        )),
        Err(ApiError::Unprocessable("upload_missing", _)) => {
            Err(ApiError::NotFound("no such task".into()))
        }
        Err(ApiError::Conflict(_, msg)) => Err(ApiError::Conflict("not_failed", msg)),
        Err(e) => Err(e),
    }
}

#[utoipa::path(
    post,
    path = "/admin/tasks/retry-all-failed",
    operation_id = "retryAllFailedTasks",
    tag = "queue",
    summary = "Requeue every failed task",
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "How many tasks were requeued (tasks requeued concurrently are skipped).", body = RequeuedCount),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
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
    Ok(axum::Json(RequeuedCount { requeued }))
}

/// Which completed tasks to analyse again. Every field is optional; all that are given must hold. Tasks with a re-analysis already running are left alone. Unknown fields are refused (422 `invalid_body`).
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReanalyseRequest {
    /// Only results whose analyzer `rulesVersion` is below this one, compared part by part as numbers (`2026.11.10` > `2026.11.9`). Results without a `rulesVersion` (before issue 9) count as below. Empty: no version filter.
    #[schema(
        max_length = 32,
        pattern = "^[0-9]{1,9}(\\.[0-9]{1,9})*$",
        example = "2026.11.2"
    )]
    analyzer_version_below: Option<String>,
    /// Completed at or after.
    from: Option<DateTime<Utc>>,
    /// Completed before; must be after `from`.
    to: Option<DateTime<Utc>>,
    /// Only tasks whose current verdict is this one.
    #[schema(value_type = Option<Verdict>)]
    verdict: Option<String>,
    /// At most this many tasks (default 1000), oldest completion first.
    #[schema(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
}

/// Largest batch.
const MAX_REANALYSIS: i64 = 10_000;

/// `POST /admin/tasks/reanalyse`: completed tasks matching the filter are analysed again with
/// today's analyzer (their stored recordings); each new result is a `TaskReanalysed` event beside
/// the old result. Tasks with a re-analysis already running are left as they are.
#[utoipa::path(
    post,
    path = "/admin/tasks/reanalyse",
    operation_id = "reanalyseTasks",
    tag = "queue",
    summary = "Analyse completed tasks again with today's analyzer",
    description = "Each matching completed task gets `TaskReanalysisRequested {batchId, by}`; the dispatcher publishes its job again (the stored recording), and the worker's result becomes `TaskReanalysed` (or `TaskReanalysisFailed`). The task stays `completed` with its current result meanwhile (`reanalysisPending: true`); the new result replaces it and the old one moves to `previousResults`. A new `scam` verdict with a caller number files that call's evidence for the number (once per task). Progress: `GET /admin/tasks/reanalyses`.",
    security(("adminBearer" = [])),
    request_body(content = ReanalyseRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Requested (also when nothing matched: `requested` 0, `batchId` null).", body = ReanalysisAccepted),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_version` (analyzerVersionBelow is not numbers and dots), `invalid_verdict`, `invalid_period` (from not before to), `invalid_limit` (not 1 to 10000), `invalid_body` (unknown field or wrong type).", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn reanalyse(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    super::extract::Json(body): super::extract::Json<ReanalyseRequest>,
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
          WHERE status = 'completed' AND reanalysis_batch IS NULL AND recording_deleted_at IS NULL
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
        axum::Json(ReanalysisAccepted {
            batch_id: (requested > 0).then_some(batch_id),
            matched: ids.len() as i64,
            requested,
        }),
    ))
}

/// `GET /admin/tasks/reanalyses`: the latest re-analysis batches and their progress.
#[utoipa::path(
    get,
    path = "/admin/tasks/reanalyses",
    operation_id = "listReanalyses",
    tag = "queue",
    summary = "Re-analysis batches and their progress",
    description = "The latest 20 batches, newest first (not paged).",
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "The batches.", body = ReanalysisBatchList),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn reanalyses(
    State(s): State<AppState>,
    _admin: AdminSession,
) -> Result<impl IntoResponse> {
    let rows = sqlx::query("SELECT * FROM reanalysis_batches ORDER BY requested_at DESC LIMIT 20")
        .fetch_all(&s.pool)
        .await
        .map_err(ApiError::from_db)?;
    let items = rows
        .iter()
        .map(|r| {
            let (total, done, failed) = (
                i64::from(r.get::<i32, _>("total")),
                i64::from(r.get::<i32, _>("done")),
                i64::from(r.get::<i32, _>("failed")),
            );
            ReanalysisBatch {
                batch_id: r.get("batch_id"),
                requested_by: r.get("requested_by"),
                requested_at: r.get("requested_at"),
                total,
                done,
                failed,
                pending: (total - done - failed).max(0),
                changed_verdict: r.get::<i32, _>("changed_verdict").into(),
                updated_at: r.get("updated_at"),
            }
        })
        .collect();
    Ok(axum::Json(ReanalysisBatchList { items }))
}
