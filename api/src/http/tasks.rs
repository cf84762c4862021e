//! `/client/uploads/presigned-url`, `/client/tasks`, `/client/tasks/{id}`.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use cqrs_es::{AggregateContext, EventStore};
use events::task::AnalysisResult;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{contact_email, Json, RequestId};
use super::openapi::{self, constant, ErrorBody, Forbidden};
use crate::app::AppState;
use crate::client_ip::ClientIp;
use crate::commands::execute;
use crate::domain::phone_number::normalize;
use crate::domain::voice_task::{TaskStatus, VoiceTaskCommand};
use crate::error::{ApiError, Result};
use crate::ratelimit::rate_limit;
use crate::storage::StorageError;

/// Audio types accepted for upload.
pub const AUDIO_TYPES: &[&str] = &[
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/mpeg",
    "audio/mp3",
    "audio/ogg",
    "audio/webm",
    "audio/mp4",
    "audio/m4a",
    "audio/x-m4a",
    "audio/flac",
    "audio/x-flac",
    "audio/aac",
];

/// How long a presigned upload URL stays valid.
pub const UPLOAD_URL_TTL: Duration = Duration::from_secs(15 * 60);
/// Analysis time assumed until there is history.
pub const DEFAULT_ANALYSIS_SECONDS: f64 = 30.0;

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Unavailable(_) => ApiError::Unavailable("object storage"),
            StorageError::Refused(msg) => ApiError::Internal(anyhow::anyhow!(msg)),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadRequest {
    /// An audio type: audio/wav, audio/x-wav, audio/wave, audio/mpeg, audio/mp3, audio/ogg, audio/webm, audio/mp4, audio/m4a, audio/x-m4a, audio/flac, audio/x-flac, audio/aac. Parameters (`;codecs=…`) are dropped.
    #[schema(value_type = String, required = true, example = "audio/webm")]
    content_type: Option<String>,
    /// Exact size in bytes; at most MAX_UPLOAD_BYTES (default 25 MiB).
    #[schema(value_type = i64, required = true, minimum = 1)]
    content_length: Option<i64>,
    #[schema(max_length = 2048)]
    turnstile_token: Option<String>,
}

/// Where and how to PUT the recording.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UploadTicket {
    pub upload_id: Uuid,
    /// Where to PUT the bytes (a presigned URL, or the api's relay).
    pub url: String,
    #[schema(value_type = Put, inline)]
    pub method: &'static str,
    /// Headers the PUT must carry.
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

constant!(Put, "PUT");

/// `status` is `queued` on first submission; a repeated submission returns the task as it stands (queuePosition/estimatedWaitSeconds null unless queued).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskAccepted {
    pub task_id: Uuid,
    #[schema(value_type = openapi::TaskStatus)]
    pub status: String,
    #[schema(required = true, minimum = 1)]
    pub queue_position: Option<i64>,
    #[schema(required = true, minimum = 0)]
    pub estimated_wait_seconds: Option<i64>,
    /// True only when an email was given and the estimate exceeds the notify threshold (5 min).
    pub email_notification: bool,
}

/// A result replaced by a re-analysis, kept beside the current one (as the read model stores
/// it).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PreviousResult {
    pub result: AnalysisResult,
    /// When this result was recorded (the completion, or an earlier re-analysis).
    pub completed_at: DateTime<Utc>,
}

/// A voice-analysis task. Right after submission (before the read model catches up) only taskId, status, attempts, queuePosition and estimatedWaitSeconds are present.
#[derive(Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_id: Uuid,
    #[schema(value_type = openapi::TaskStatus)]
    pub status: String,
    /// Only while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub queue_position: Option<i64>,
    /// Only while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub estimated_wait_seconds: Option<i64>,
    #[schema(minimum = 0)]
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub submitted_at: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub started_at: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub completed_at: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_notification: Option<bool>,
    /// Once completed: the current result (after a re-analysis, the newest one).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<AnalysisResult>)]
    pub result: Option<Value>,
    /// Why the task failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Earlier results replaced by re-analyses, oldest first. Present only once a task has been re-analysed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<PreviousResult>>)]
    pub previous_results: Option<Value>,
    /// When the current result replaced an earlier one. Present with `previousResults`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<DateTime<Utc>>)]
    pub reanalysed_at: Option<Option<DateTime<Utc>>>,
    /// Present (true) while a re-analysis runs; the task stays `completed` with its current result meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reanalysis_pending: Option<bool>,
    /// Completed tasks: where the recording can be played, `/api/v1/client/tasks/{taskId}/recording` (a redirect to a short-lived link).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "/api/v1/client/tasks/6f1c9a52-1111-4b8e-9d1e-2c3a4b5c6d7e/recording")]
    pub recording_url: Option<String>,
    /// When retention deleted the recording (RECORDING_RETENTION_DAYS after the task ended);
    /// the result stays, `recordingUrl` is gone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_deleted_at: Option<DateTime<Utc>>,
}

#[utoipa::path(
    post,
    path = "/client/uploads/presigned-url",
    operation_id = "createUploadUrl",
    tag = "voice",
    summary = "Get a presigned URL to upload a recording",
    description = "Public, Turnstile-protected, rate limited per IP. 415 when `contentType` is not an accepted audio type (or the request is not JSON); 413 when `contentLength` exceeds MAX_UPLOAD_BYTES (or the body is too large). 503 when object storage, Turnstile or Postgres is down.",
    security(()),
    request_body(content = UploadRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "A presigned PUT URL that accepts exactly the given content type and length.", body = UploadTicket),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 403, description = "Forbidden. A banned IP gets the `AccessDenied` body (`access_denied`) before any other processing. Codes: `captcha_failed`, `access_denied`.", body = Forbidden),
        (status = 409, description = "Conflict. Codes: `upload_exists`, `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_length`, `invalid_body`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(ip = %ip))]
pub async fn presign_upload(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    Json(body): Json<UploadRequest>,
) -> Result<impl IntoResponse> {
    rate_limit(&s.public_writes, ip)?;
    // Parameters (`audio/webm;codecs=opus`) are dropped: the URL is signed for the base type,
    // which the answer's `headers` carry.
    let content_type = body
        .content_type
        .as_deref()
        .and_then(|t| t.split(';').next())
        .map(|t| t.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !AUDIO_TYPES.contains(&content_type.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "contentType must be an audio type ({})",
            AUDIO_TYPES.join(", ")
        )));
    }
    let length = match body.content_length {
        Some(n) if n > 0 => n as u64,
        _ => {
            return Err(ApiError::unprocessable(
                "invalid_length",
                "contentLength must be a positive number of bytes",
            ))
        }
    };
    if length > s.max_upload_bytes {
        return Err(ApiError::PayloadTooLarge(format!(
            "recordings may have at most {} bytes",
            s.max_upload_bytes
        )));
    }
    s.turnstile
        .verify(body.turnstile_token.as_deref(), ip)
        .await?;
    let upload_id = Uuid::new_v4();
    let key = format!("uploads/{upload_id}");
    let expires_at =
        Utc::now() + chrono::Duration::from_std(UPLOAD_URL_TTL).expect("small duration");
    let presigned = s
        .storage
        .presign_put(&key, &content_type, length, UPLOAD_URL_TTL)
        .await?;
    let content_type_sent = content_type.clone();
    let cmd = VoiceTaskCommand::AuthorizeUpload {
        object_key: key,
        content_type,
        content_length: length,
        expires_at,
    };
    execute(
        &s.voice_tasks,
        &upload_id.to_string(),
        cmd,
        &rid.context(format!("ip:{ip}")),
    )
    .await?;
    let (url, headers) = if s.uploads_via_api {
        // Same origin as the pages; the relay checks type and length and forwards to storage.
        let relay = format!("/api/v1/client/uploads/{upload_id}/content");
        (
            relay,
            vec![("content-type".to_owned(), content_type_sent.clone())],
        )
    } else {
        (presigned.url, presigned.headers)
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(UploadTicket {
            upload_id,
            url,
            method: "PUT",
            headers: headers.into_iter().collect(),
            expires_at,
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubmitTaskRequest {
    #[schema(value_type = Uuid, required = true)]
    upload_id: Option<String>,
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    /// Phone number of the caller; normalized to E.164.
    caller_number: Option<String>,
    /// BCP 47 tag, e.g. `en`, `pt-BR`.
    #[schema(max_length = 35)]
    language: Option<String>,
    #[schema(max_length = 2048)]
    turnstile_token: Option<String>,
}

/// Queue position (1-based) of a task queued at `queued_at`, and the estimated wait.
async fn queue_estimate(s: &AppState, queued_at: Option<DateTime<Utc>>) -> Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM voice_tasks WHERE status = 'queued' AND ($1::timestamptz IS NULL OR queued_at < $1)) AS ahead,
                (SELECT avg(EXTRACT(EPOCH FROM completed_at - started_at))::float8 FROM (
                    SELECT completed_at, started_at FROM voice_tasks
                     WHERE status = 'completed' AND started_at IS NOT NULL
                     ORDER BY completed_at DESC LIMIT 50) recent) AS avg_seconds,
                (SELECT count(*) FROM worker_heartbeats h JOIN workers w USING (worker_id)
                  WHERE w.revoked_at IS NULL AND h.last_seen_at > now() - interval '15 seconds') AS online",
    )
    .bind(queued_at)
    .fetch_one(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    let position = row.get::<i64, _>("ahead") + 1;
    let avg = row
        .get::<Option<f64>, _>("avg_seconds")
        .unwrap_or(DEFAULT_ANALYSIS_SECONDS)
        .max(1.0);
    let workers = row.get::<i64, _>("online").max(1);
    let rounds = (position + workers - 1) / workers;
    Ok((position, (rounds as f64 * avg).ceil() as i64))
}

#[utoipa::path(
    post,
    path = "/client/tasks",
    operation_id = "submitTask",
    tag = "voice",
    summary = "Submit an uploaded recording for analysis",
    description = "Public, Turnstile-protected, rate limited per IP. 422 `upload_missing` if nothing was uploaded, `upload_mismatch` if the stored object differs from what the URL was signed for.",
    security(()),
    request_body(content = SubmitTaskRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "Accepted (idempotent: the same uploadId returns the same task).", body = TaskAccepted),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 403, description = "Forbidden. A banned IP gets the `AccessDenied` body (`access_denied`) before any other processing. Codes: `captcha_failed`, `access_denied`.", body = Forbidden),
        (status = 409, description = "Conflict. Codes: `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_id`, `invalid_email`, `invalid_phone_number`, `invalid_language`, `upload_missing`, `upload_mismatch`, `invalid_body`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(ip = %ip))]
pub async fn submit(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    Json(body): Json<SubmitTaskRequest>,
) -> Result<impl IntoResponse> {
    rate_limit(&s.public_writes, ip)?;
    let upload_id = body
        .upload_id
        .as_deref()
        .and_then(|u| Uuid::parse_str(u.trim()).ok())
        .ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_id",
                "uploadId must be the UUID from the presigned-url answer",
            )
        })?;
    let email = contact_email(body.email, "email")?;
    let caller_number = match body
        .caller_number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        Some(n) => Some(
            normalize(n, None)
                .map_err(|e| ApiError::unprocessable("invalid_phone_number", e.to_string()))?,
        ),
        None => None,
    };
    let language = body
        .language
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty());
    if language
        .as_deref()
        .is_some_and(|l| l.len() > 35 || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        return Err(ApiError::unprocessable(
            "invalid_language",
            "language must be a BCP 47 tag such as en or pt-BR",
        ));
    }
    s.turnstile
        .verify(body.turnstile_token.as_deref(), ip)
        .await?;

    let id = upload_id.to_string();
    let mut task = s
        .voice_task_store
        .load_aggregate(&id)
        .await
        .map_err(ApiError::from_aggregate)?;
    let task = task.aggregate();
    let missing =
        || ApiError::unprocessable("upload_missing", "nothing was uploaded for this uploadId");
    match task.status() {
        TaskStatus::None => return Err(missing()),
        TaskStatus::Authorized => {
            let (key, content_type, length) = task.upload();
            let info = s.storage.head(key).await?.ok_or_else(missing)?;
            if info.length != length
                || info
                    .content_type
                    .as_deref()
                    .is_some_and(|t| !t.eq_ignore_ascii_case(content_type))
            {
                return Err(ApiError::unprocessable(
                    "upload_mismatch",
                    "the uploaded file is not the one the URL was signed for",
                ));
            }
            let (position, wait) = queue_estimate(&s, None).await?;
            let email_notification = email.is_some() && wait > s.email_notify_after_seconds;
            let cmd = VoiceTaskCommand::Submit {
                email,
                caller_number,
                language,
                email_notification,
            };
            execute(&s.voice_tasks, &id, cmd, &rid.context(format!("ip:{ip}"))).await?;
            metrics::counter!("voice_tasks_submitted_total").increment(1);
            return Ok((
                StatusCode::ACCEPTED,
                axum::Json(TaskAccepted {
                    task_id: upload_id,
                    status: "queued".into(),
                    queue_position: Some(position),
                    estimated_wait_seconds: Some(wait),
                    email_notification,
                }),
            ));
        }
        _ => {}
    }
    // Submitted before: the same task, as it stands now.
    let view = task_view(&s, upload_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(TaskAccepted {
            task_id: upload_id,
            status: view.status,
            queue_position: view.queue_position,
            estimated_wait_seconds: view.estimated_wait_seconds,
            email_notification: view.email_notification.unwrap_or(false),
        }),
    ))
}

/// The task as API.md describes it, from the read model.
pub async fn task_view(s: &AppState, id: Uuid) -> Result<Task> {
    let row =
        sqlx::query("SELECT * FROM voice_tasks WHERE task_id = $1 AND status <> 'authorized'")
            .bind(id)
            .fetch_optional(&s.pool)
            .await
            .map_err(ApiError::from_db)?;
    let Some(row) = row else {
        // Just submitted, not projected yet: the aggregate knows (the read model follows within
        // milliseconds), so a client polling right after its 202 never sees a 404.
        let mut ctx = s
            .voice_task_store
            .load_aggregate(&id.to_string())
            .await
            .map_err(ApiError::from_aggregate)?;
        if ctx.aggregate().status() != TaskStatus::Queued {
            return Err(ApiError::NotFound("no such task".into()));
        }
        let (position, wait) = queue_estimate(s, None).await?;
        return Ok(Task {
            task_id: id,
            status: "queued".into(),
            queue_position: Some(position),
            estimated_wait_seconds: Some(wait),
            attempts: 0,
            submitted_at: None,
            started_at: None,
            completed_at: None,
            email_notification: None,
            result: None,
            error: None,
            previous_results: None,
            reanalysed_at: None,
            reanalysis_pending: None,
            recording_url: None,
            recording_deleted_at: None,
        });
    };
    let status: String = row.get("status");
    let (queue_position, estimated_wait_seconds) = if status == "queued" {
        let (position, wait) = queue_estimate(s, row.get("queued_at")).await?;
        (Some(position), Some(wait))
    } else {
        (None, None)
    };
    // Re-analysis: every earlier result is kept and shown beside the current one.
    let previous: Value = row.get("previous_results");
    let reanalysed = previous.as_array().is_some_and(|a| !a.is_empty());
    let deleted: Option<DateTime<Utc>> = row.get("recording_deleted_at");
    Ok(Task {
        task_id: id,
        queue_position,
        estimated_wait_seconds,
        attempts: row.get::<i32, _>("attempts").into(),
        submitted_at: Some(row.get("submitted_at")),
        started_at: Some(row.get("started_at")),
        completed_at: Some(row.get("completed_at")),
        email_notification: Some(row.get("email_notification")),
        result: row.get("result"),
        error: row.get("error"),
        reanalysed_at: reanalysed.then(|| row.get("reanalysed_at")),
        previous_results: reanalysed.then_some(previous),
        reanalysis_pending: row.get::<Option<Uuid>, _>("reanalysis_batch").map(|_| true),
        recording_url: (status == "completed" && deleted.is_none())
            .then(|| format!("/api/v1/client/tasks/{id}/recording")),
        recording_deleted_at: deleted,
        status,
    })
}

/// `GET /client/tasks/{taskId}/recording`: the recording, for the call-check page's player (a
/// redirect to a short-lived presigned GET; the task id is the capability, as for the status).
#[utoipa::path(
    get,
    path = "/client/tasks/{task_id}/recording",
    operation_id = "getTaskRecording",
    tag = "voice",
    summary = "Play a task's recording",
    description = "Public, like the task itself (the random id is the capability); rate limited per IP with the public reads. Redirects to a presigned GET of the uploaded recording on the object store, valid 15 minutes, so the recording never passes through the api. The link names the host of the api's `S3_ENDPOINT_URL`, which the client must reach. Any submitted task has one (queued, processing, completed or failed); an upload never submitted, an unknown or a malformed id is 404.",
    security(()),
    params(
        ("task_id" = Uuid, Path, description = "The task id (the upload id); the random id is the capability.")
    ),
    responses(
        (status = 302, description = "Found: the recording is at `Location`, the bytes that were uploaded, with their content type.", headers(("Location" = String, description = "Presigned GET URL of the recording, valid 15 minutes."), ("Cache-Control" = String, description = "`no-store`: the link expires, so it is never cached."))),
        (status = 403, description = "Forbidden. A banned IP gets the `AccessDenied` body (`access_denied`) before any other processing. Codes: `access_denied`.", body = Forbidden),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 410, description = "The recording was deleted after `RECORDING_RETENTION_DAYS` (the result is kept). Codes: `gone`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn recording(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<axum::response::Response> {
    rate_limit(&s.public_reads, ip)?;
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::NotFound("no such task".into()))?;
    let found: Option<(bool, bool)> = sqlx::query_as(
        "SELECT status <> 'authorized', recording_deleted_at IS NOT NULL FROM voice_tasks WHERE task_id = $1",
    )
    .bind(id)
    .fetch_optional(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    match found {
        Some((true, false)) => {}
        Some((true, true)) => {
            return Err(ApiError::Gone(
                "the recording was deleted after the retention period; the result is kept".into(),
            ))
        }
        _ => return Err(ApiError::NotFound("no such task".into())),
    }
    let url = s
        .storage
        .presign_get(&format!("uploads/{id}"), Duration::from_secs(900))
        .await?;
    Ok((
        StatusCode::FOUND,
        [
            (axum::http::header::LOCATION, url),
            (axum::http::header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response())
}

#[utoipa::path(
    get,
    path = "/client/tasks/{task_id}",
    operation_id = "getTask",
    tag = "voice",
    summary = "Get a task's status and result",
    description = "Public; rate limited per IP. A malformed id is 404. A completed task carries `recordingUrl`; after a re-analysis, `result` is the newest result and `previousResults` the earlier ones; `reanalysisPending` while one runs.",
    security(()),
    params(
        ("task_id" = Uuid, Path, description = "The task id (the upload id); the random id is the capability.")
    ),
    responses(
        (status = 200, description = "The task.", body = Task),
        (status = 403, description = "Forbidden. A banned IP gets the `AccessDenied` body (`access_denied`) before any other processing. Codes: `access_denied`.", body = Forbidden),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn status(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<impl IntoResponse> {
    rate_limit(&s.public_reads, ip)?;
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::NotFound("no such task".into()))?;
    Ok(axum::Json(task_view(&s, id).await?))
}

/// `GET /client/tasks/{id}/events`: server-sent `status` events, one per change, until the task
/// completes or fails. Changes come from the task's own events on NATS; while it waits in the
/// queue its position is refreshed every few seconds.
#[utoipa::path(
    get,
    path = "/client/tasks/{task_id}/events",
    operation_id = "streamTaskEvents",
    tag = "voice",
    summary = "Stream a task's status changes (SSE)",
    description = "Public; rate limited per IP. 503 when Postgres or NATS is unavailable.",
    security(()),
    params(
        ("task_id" = Uuid, Path, description = "The task id (the upload id); the random id is the capability.")
    ),
    responses(
        (status = 200, description = "Server-sent events. Each event is `event: status` with `data:` the JSON `Task` (same shape as `GET /client/tasks/{task_id}`); the first is sent at once, then one per change (queue position refreshed every few seconds) until the task is `completed` or `failed`, then the stream ends. Keep-alive comments are sent in between.", body = String, content_type = "text/event-stream", example = "event: status\ndata: {\"taskId\":\"6f1c…\",\"status\":\"queued\",\"attempts\":0,\"queuePosition\":1,\"estimatedWaitSeconds\":30}\n\n"),
        (status = 403, description = "Forbidden. A banned IP gets the `AccessDenied` body (`access_denied`) before any other processing. Codes: `access_denied`.", body = Forbidden),
        (status = 404, description = "Not found. Codes: `not_found`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all)]
pub async fn events(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<
    axum::response::sse::Sse<
        impl futures::Stream<
            Item = std::result::Result<axum::response::sse::Event, std::convert::Infallible>,
        >,
    >,
> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt;
    rate_limit(&s.public_reads, ip)?;
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::NotFound("no such task".into()))?;
    let first = task_view(&s, id).await?;
    let mut changes = s
        .nats
        .subscribe(events::subject::aggregate_filter(
            events::voice_task::AGGREGATE_TYPE,
            &id.to_string(),
        ))
        .await
        .map_err(|_| ApiError::Unavailable("nats"))?;
    let stream = async_stream_lite(move |tx| async move {
        let mut last = first;
        if tx.send(last.clone()).await.is_err() {
            return;
        }
        let mut refresh = tokio::time::interval(Duration::from_secs(3));
        loop {
            if last.status == "completed" || last.status == "failed" {
                return;
            }
            tokio::select! {
                m = changes.next() => if m.is_none() { return },
                _ = refresh.tick() => {}
            }
            // The read model follows the event within milliseconds; give it a moment.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Ok(now) = task_view(&s, id).await else {
                continue;
            };
            if now != last {
                last = now;
                if tx.send(last.clone()).await.is_err() {
                    return;
                }
            }
        }
    })
    .map(|v| {
        Ok(Event::default()
            .event("status")
            .json_data(v)
            .unwrap_or_else(|_| Event::default()))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A stream fed by a task through a channel (ends when the task ends or the client leaves).
fn async_stream_lite<T: Send + 'static, F, Fut>(f: F) -> impl futures::Stream<Item = T>
where
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    tokio::spawn(f(tx));
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `PUT /client/uploads/{uploadId}/content` (only with `UPLOADS_VIA_API`): the relay for object
/// stores browsers cannot reach cross-origin. Accepts exactly the authorized type and length,
/// before its expiry, under the public read limit (the upload was already counted as a write when
/// its URL was issued; counting it again would refuse the third step of an ordinary check); all of
/// that is checked before a byte of the body is read, and the body is streamed to the store, never
/// held whole in memory.
#[utoipa::path(
    put,
    path = "/client/uploads/{upload_id}/content",
    operation_id = "relayUpload",
    tag = "voice",
    summary = "Upload relay (only with UPLOADS_VIA_API): the recording's bytes, forwarded to storage",
    description = "Enabled for object stores that browsers cannot reach cross-origin (the local s3s-fs). The presigned-url answer then names this URL. Accepts exactly the authorized content type and length (with a Content-Length header, no chunked body) before the upload's expiresAt, under the public read rate limit (the upload URL already counted as a write); all of that is checked before the body is read, and the body is streamed to storage. The whole upload must arrive within UPLOAD_TIMEOUT_SECONDS (300).",
    security(()),
    params(
        ("upload_id" = Uuid, Path, description = "The uploadId from /client/uploads/presigned-url")
    ),
    request_body(content = Vec<u8>, content_type = "audio/*", description = "The recording's bytes, exactly as authorized."),
    responses(
        (status = 200, description = "Stored"),
        (status = 403, description = "signature_mismatch: another content type or length than authorized, or no Content-Length; upload_expired: the upload's expiresAt has passed (ask for a new one)", body = ErrorBody),
        (status = 404, description = "not_found: relay disabled, unknown upload, or already submitted (answered before the body is read)", body = ErrorBody),
        (status = 503, description = "object storage is unavailable (Retry-After)", body = ErrorBody),
        (status = 400, description = "bad_request: the body ended before the authorized length arrived", body = ErrorBody),
        (status = 408, description = "request_timeout: the body did not arrive within UPLOAD_TIMEOUT_SECONDS"),
        (status = 429, description = "rate_limited (Retry-After): over the public read limit", body = ErrorBody)
    )
)]
#[tracing::instrument(skip_all)]
pub async fn relay_upload(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<StatusCode> {
    if !s.uploads_via_api {
        return Err(ApiError::NotFound(
            "the upload relay is off (UPLOADS_VIA_API)".into(),
        ));
    }
    rate_limit(&s.public_reads, ip)?;
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::NotFound("no such upload".into()))?;
    let mut ctx = s
        .voice_task_store
        .load_aggregate(&id.to_string())
        .await
        .map_err(ApiError::from_aggregate)?;
    let task = ctx.aggregate();
    if task.status() != TaskStatus::Authorized {
        return Err(ApiError::NotFound(
            "no upload is expected for this id".into(),
        ));
    }
    if task.upload_expires_at().is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::Forbidden(
            "upload_expired",
            "this upload link has expired; ask for a new one".into(),
        ));
    }
    let (key, content_type, length) = task.upload();
    let sent_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !sent_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .eq_ignore_ascii_case(content_type)
    {
        return Err(ApiError::Forbidden(
            "signature_mismatch",
            format!("this upload accepts {content_type} only"),
        ));
    }
    // The declared length must be the authorized one (no chunked bodies); the server never
    // reads past it.
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared != Some(length) {
        return Err(ApiError::Forbidden(
            "signature_mismatch",
            format!("this upload accepts exactly {length} bytes, with a Content-Length"),
        ));
    }
    let presigned = s
        .storage
        .presign_put(key, content_type, length, Duration::from_secs(300))
        .await?;
    // Whether the client's body failed (cut short, timed out) rather than the store.
    let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stream = {
        let cut = cut.clone();
        futures::StreamExt::inspect(body.into_data_stream(), move |chunk| {
            if chunk.is_err() {
                cut.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let stored = s
        .storage
        .put_presigned(&presigned, reqwest::Body::wrap_stream(stream), length)
        .await;
    if cut.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(ApiError::BadRequest(format!(
            "the upload ended before its {length} bytes arrived"
        )));
    }
    match stored? {
        200..=299 => Ok(StatusCode::OK),
        code => Err(ApiError::Internal(anyhow::anyhow!(
            "storage refused the relayed upload: {code}"
        ))),
    }
}
