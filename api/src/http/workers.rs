//! `/admin/workers`: register (token shown once), list, revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{display_name, Json, RequestId};
use super::openapi::ErrorBody;
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::commands::{execute, CommandError};
use crate::domain::worker::{hash_token, new_token, WorkerCommand, WorkerError};
use crate::error::{ApiError, Result};

/// A worker is online when its last heartbeat is at most this old.
pub const ONLINE_WITHIN_SECONDS: i64 = 15;

#[derive(Deserialize, ToSchema)]
pub struct RegisterWorkerRequest {
    #[schema(value_type = String, required = true, min_length = 1, max_length = 100)]
    name: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerRegistered {
    pub worker_id: Uuid,
    pub name: String,
    /// Shown once; never expires; lets the worker connect to NATS.
    pub worker_token: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkerItem {
    pub worker_id: Uuid,
    pub name: String,
    #[schema(value_type = WorkerStatus, inline)]
    pub status: &'static str,
    pub registered_at: DateTime<Utc>,
    #[schema(required = true)]
    pub last_seen_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub current_task_id: Option<Uuid>,
    pub tasks_completed: i64,
    pub tasks_failed: i64,
    #[schema(required = true)]
    pub version: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
pub enum WorkerStatus {
    Online,
    Offline,
    Revoked,
}

#[derive(Serialize, ToSchema)]
pub struct WorkerList {
    pub items: Vec<WorkerItem>,
}

#[utoipa::path(
    post,
    path = "/admin/workers",
    operation_id = "registerWorker",
    tag = "workers",
    summary = "Register a worker",
    security(("adminBearer" = [])),
    request_body(content = RegisterWorkerRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The worker and its token (shown once, never expires).", body = WorkerRegistered),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `worker_exists`, `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_name`, `invalid_body`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn register(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Json(body): Json<RegisterWorkerRequest>,
) -> Result<impl IntoResponse> {
    let name = display_name(body.name)?;
    let worker_id = Uuid::new_v4();
    let token = new_token(worker_id);
    let cmd = WorkerCommand::Register {
        name: name.clone(),
        token_hash: hash_token(&token),
    };
    execute(
        &s.workers,
        &worker_id.to_string(),
        cmd,
        &rid.context(format!("admin:{}", admin.username)),
    )
    .await?;
    tracing::info!(%worker_id, name, "worker registered");
    Ok((
        StatusCode::CREATED,
        axum::Json(WorkerRegistered {
            worker_id,
            name,
            worker_token: token,
        }),
    ))
}

#[utoipa::path(
    get,
    path = "/admin/workers",
    operation_id = "listWorkers",
    tag = "workers",
    summary = "List workers",
    security(("adminBearer" = [])),
    responses(
        (status = 200, description = "All workers, in registration order.", body = WorkerList),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn list(State(s): State<AppState>, _admin: AdminSession) -> Result<impl IntoResponse> {
    let rows = sqlx::query(
        "SELECT w.worker_id, w.name, w.registered_at, w.revoked_at, h.last_seen_at, h.current_task_id,
                coalesce(h.tasks_completed, 0) AS tasks_completed, coalesce(h.tasks_failed, 0) AS tasks_failed,
                h.version, h.last_seen_at > now() - make_interval(secs => $1) AS fresh
           FROM workers w LEFT JOIN worker_heartbeats h USING (worker_id)
          ORDER BY w.registered_at, w.worker_id",
    )
    .bind(ONLINE_WITHIN_SECONDS as f64)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let items = rows
        .iter()
        .map(|r| {
            let revoked = r.get::<Option<DateTime<Utc>>, _>("revoked_at").is_some();
            let status = match (revoked, r.get::<Option<bool>, _>("fresh").unwrap_or(false)) {
                (true, _) => "revoked",
                (false, true) => "online",
                (false, false) => "offline",
            };
            WorkerItem {
                worker_id: r.get("worker_id"),
                name: r.get("name"),
                status,
                registered_at: r.get("registered_at"),
                last_seen_at: r.get("last_seen_at"),
                current_task_id: r.get("current_task_id"),
                tasks_completed: r.get("tasks_completed"),
                tasks_failed: r.get("tasks_failed"),
                version: r.get("version"),
            }
        })
        .collect();
    Ok(axum::Json(WorkerList { items }))
}

#[utoipa::path(
    delete,
    path = "/admin/workers/{id}",
    operation_id = "revokeWorker",
    tag = "workers",
    summary = "Revoke a worker",
    security(("adminBearer" = [])),
    params(
        ("id" = Uuid, Path, description = "The worker id (a malformed id is 404).")
    ),
    responses(
        (status = 204, description = "Revoked (also when already revoked); within 5 s the worker is disconnected and cannot reconnect."),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `conflict`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(worker = %raw_id))]
pub async fn revoke(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Path(raw_id): Path<String>,
) -> Result<StatusCode> {
    let id = Uuid::parse_str(&raw_id).map_err(|_| ApiError::NotFound("no such worker".into()))?;
    let cmd = WorkerCommand::Revoke {
        by: admin.username.clone(),
    };
    match execute(
        &s.workers,
        &id.to_string(),
        cmd,
        &rid.context(format!("admin:{}", admin.username)),
    )
    .await
    {
        // Revoking twice is harmless: the credential is void either way.
        Ok(_) | Err(CommandError::Domain(WorkerError::AlreadyRevoked)) => {}
        Err(e) => return Err(e.into()),
    }
    s.revocation.disconnect(id).await;
    tracing::info!(worker = %id, "worker revoked");
    Ok(StatusCode::NO_CONTENT)
}
