//! `/admin/workers`: register (token shown once), list, revoke.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

use super::extract::{Json, RequestId};
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::commands::{execute, CommandError};
use crate::domain::worker::{hash_token, new_token, WorkerCommand, WorkerError};
use crate::error::{ApiError, Result};

/// A worker is online when its last heartbeat is at most this old.
pub const ONLINE_WITHIN_SECONDS: i64 = 15;

#[derive(Deserialize)]
pub struct RegisterBody {
    name: Option<String>,
}

#[tracing::instrument(skip_all)]
pub async fn register(
    State(s): State<AppState>,
    admin: AdminSession,
    rid: RequestId,
    Json(body): Json<RegisterBody>,
) -> Result<impl IntoResponse> {
    let name = body
        .name
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::unprocessable(
            "invalid_name",
            "name needs 1 to 100 characters",
        ));
    }
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
        axum::Json(json!({"workerId": worker_id, "name": name, "workerToken": token})),
    ))
}

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
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            let revoked = r.get::<Option<DateTime<Utc>>, _>("revoked_at").is_some();
            let status = match (revoked, r.get::<Option<bool>, _>("fresh").unwrap_or(false)) {
                (true, _) => "revoked",
                (false, true) => "online",
                (false, false) => "offline",
            };
            json!({
                "workerId": r.get::<Uuid, _>("worker_id"),
                "name": r.get::<String, _>("name"),
                "status": status,
                "registeredAt": r.get::<DateTime<Utc>, _>("registered_at"),
                "lastSeenAt": r.get::<Option<DateTime<Utc>>, _>("last_seen_at"),
                "currentTaskId": r.get::<Option<Uuid>, _>("current_task_id"),
                "tasksCompleted": r.get::<i64, _>("tasks_completed"),
                "tasksFailed": r.get::<i64, _>("tasks_failed"),
                "version": r.get::<Option<String>, _>("version"),
            })
        })
        .collect();
    Ok(axum::Json(json!({"items": items})))
}

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
