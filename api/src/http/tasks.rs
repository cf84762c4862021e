//! `/client/uploads/presigned-url`, `/client/tasks`, `/client/tasks/{id}`.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use cqrs_es::{AggregateContext, EventStore};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use uuid::Uuid;

use super::extract::{Json, RequestId};
use super::phones::rate_limit;
use crate::app::AppState;
use crate::client_ip::ClientIp;
use crate::commands::execute;
use crate::domain::phone_number::normalize;
use crate::domain::voice_task::{TaskStatus, VoiceTaskCommand};
use crate::error::{ApiError, Result};
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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UploadBody {
    content_type: Option<String>,
    content_length: Option<i64>,
    turnstile_token: Option<String>,
}

#[tracing::instrument(skip_all, fields(ip = %ip))]
pub async fn presign_upload(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    Json(body): Json<UploadBody>,
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
    let headers: serde_json::Map<String, Value> = headers
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({
            "uploadId": upload_id,
            "url": url,
            "method": "PUT",
            "headers": headers,
            "expiresAt": expires_at,
        })),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitBody {
    upload_id: Option<String>,
    email: Option<String>,
    caller_number: Option<String>,
    language: Option<String>,
    turnstile_token: Option<String>,
}

fn valid_email(e: &str) -> bool {
    let Some((local, domain)) = e.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && e.len() <= 254
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !e
            .chars()
            .any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',')
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

#[tracing::instrument(skip_all, fields(ip = %ip))]
pub async fn submit(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    Json(body): Json<SubmitBody>,
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
    let email = body
        .email
        .map(|e| e.trim().to_owned())
        .filter(|e| !e.is_empty());
    if email.as_deref().is_some_and(|e| !valid_email(e)) {
        return Err(ApiError::unprocessable(
            "invalid_email",
            "email is not an email address",
        ));
    }
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
                axum::Json(json!({
                    "taskId": upload_id,
                    "status": "queued",
                    "queuePosition": position,
                    "estimatedWaitSeconds": wait,
                    "emailNotification": email_notification,
                })),
            ));
        }
        _ => {}
    }
    // Submitted before: the same task, as it stands now.
    let view = task_view(&s, upload_id).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "taskId": upload_id,
            "status": view["status"],
            "queuePosition": view.get("queuePosition").cloned().unwrap_or(Value::Null),
            "estimatedWaitSeconds": view.get("estimatedWaitSeconds").cloned().unwrap_or(Value::Null),
            "emailNotification": view.get("emailNotification").cloned().unwrap_or(Value::Bool(false)),
        })),
    ))
}

/// The task as API.md describes it, from the read model.
pub async fn task_view(s: &AppState, id: Uuid) -> Result<Value> {
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
        return Ok(json!({
            "taskId": id, "status": "queued", "attempts": 0,
            "queuePosition": position, "estimatedWaitSeconds": wait,
        }));
    };
    let status: String = row.get("status");
    let mut v = json!({
        "taskId": id,
        "status": status,
        "attempts": row.get::<i32, _>("attempts"),
        "submittedAt": row.get::<Option<DateTime<Utc>>, _>("submitted_at"),
        "startedAt": row.get::<Option<DateTime<Utc>>, _>("started_at"),
        "completedAt": row.get::<Option<DateTime<Utc>>, _>("completed_at"),
        "emailNotification": row.get::<bool, _>("email_notification"),
    });
    if status == "queued" {
        let (position, wait) = queue_estimate(s, row.get("queued_at")).await?;
        v["queuePosition"] = json!(position);
        v["estimatedWaitSeconds"] = json!(wait);
    }
    if let Some(result) = row.get::<Option<Value>, _>("result") {
        v["result"] = result;
    }
    if let Some(error) = row.get::<Option<String>, _>("error") {
        v["error"] = json!(error);
    }
    // Re-analysis: every earlier result is kept and shown beside the current one.
    let previous: Value = row.get("previous_results");
    if previous.as_array().is_some_and(|a| !a.is_empty()) {
        v["previousResults"] = previous;
        v["reanalysedAt"] = json!(row.get::<Option<DateTime<Utc>>, _>("reanalysed_at"));
    }
    if row.get::<Option<Uuid>, _>("reanalysis_batch").is_some() {
        v["reanalysisPending"] = json!(true);
    }
    if status == "completed" {
        v["recordingUrl"] = json!(format!("/api/v1/client/tasks/{id}/recording"));
    }
    Ok(v)
}

/// `GET /client/tasks/{taskId}/recording`: the recording, for the call-check page's player (a
/// redirect to a short-lived presigned GET; the task id is the capability, as for the status).
#[tracing::instrument(skip_all)]
pub async fn recording(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
) -> Result<axum::response::Response> {
    rate_limit(&s.public_reads, ip)?;
    let id = Uuid::parse_str(&raw).map_err(|_| ApiError::NotFound("no such task".into()))?;
    let submitted: Option<bool> =
        sqlx::query_scalar("SELECT status <> 'authorized' FROM voice_tasks WHERE task_id = $1")
            .bind(id)
            .fetch_optional(&s.pool)
            .await
            .map_err(ApiError::from_db)?;
    if submitted != Some(true) {
        return Err(ApiError::NotFound("no such task".into()));
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
            if last["status"] == "completed" || last["status"] == "failed" {
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
fn async_stream_lite<F, Fut>(f: F) -> impl futures::Stream<Item = Value>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Value>) -> Fut,
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
#[tracing::instrument(skip_all)]
pub async fn relay_upload(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    Path(raw): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<StatusCode> {
    if !s.uploads_via_api {
        return Err(ApiError::NotFound("no such endpoint".into()));
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
