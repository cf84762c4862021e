//! The one HTTP error type. Every handler returns `Result<T, ApiError>`; the body is always
//! `{"error": "<snake_case_code>", "message": "<human text>"}`.

use axum::extract::rejection::{FormRejection, JsonRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cqrs_es::AggregateError;
use serde::Serialize;
use utoipa::ToSchema;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The API's error body.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// snake_case error code
    #[schema(example = "not_found")]
    pub error: &'static str,
    /// Human-readable text.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or query could not be parsed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: missing or invalid credentials.
    #[error("{1}")]
    Unauthorized(&'static str, String),
    /// 403: authenticated but not allowed.
    #[error("{1}")]
    Forbidden(&'static str, String),
    /// 404
    #[error("{0}")]
    NotFound(String),
    /// 410: it existed and was deleted for good (retention).
    #[error("{0}")]
    Gone(String),
    /// 409: duplicate or already done.
    #[error("{1}")]
    Conflict(&'static str, String),
    /// 413
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid.
    #[error("{1}")]
    Unprocessable(&'static str, String),
    /// 429 with `Retry-After`.
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// 503 with `Retry-After: 1`: this instance is saturated (e.g. password checks); retry.
    #[error("{0}")]
    Busy(String),
    /// 503 with `Retry-After`: Postgres or NATS is down.
    #[error("{0} is unavailable")]
    Unavailable(&'static str),
    /// 500: logged with its whole chain of causes, shown to the client without it.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ApiError {
    pub fn unprocessable(code: &'static str, msg: impl Into<String>) -> Self {
        ApiError::Unprocessable(code, msg.into())
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Unauthorized(code, _) => (StatusCode::UNAUTHORIZED, code),
            Forbidden(code, _) => (StatusCode::FORBIDDEN, code),
            NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Gone(_) => (StatusCode::GONE, "gone"),
            Conflict(code, _) => (StatusCode::CONFLICT, code),
            PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Unprocessable(code, _) => (StatusCode::UNPROCESSABLE_ENTITY, code),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
            Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }

    /// Maps a Postgres error: unreachable → 503, anything else → 500 (logged).
    pub fn from_db(err: sqlx::Error) -> Self {
        if common::db::is_unavailable(&err) {
            ApiError::Unavailable("postgres")
        } else {
            ApiError::Internal(anyhow::Error::new(err).context("database"))
        }
    }

    /// Maps a failure of the event store or of a command; the domain error decides its own
    /// status (the same mapping as `From<CommandError<E>>`).
    pub fn from_aggregate<E>(err: AggregateError<E>) -> Self
    where
        E: std::error::Error + Into<ApiError>,
    {
        crate::commands::CommandError::from(err).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(cause = format!("{cause:#}"), "internal error");
                "internal error".to_string()
            }
            ApiError::Unavailable(what) => {
                tracing::warn!(dependency = what, "dependency unavailable");
                format!("{what} is unavailable; retry later")
            }
            other => other.to_string(),
        };
        let body = ErrorBody {
            error: code,
            message,
        };
        let mut resp = (status, Json(body)).into_response();
        let retry_after = match self {
            ApiError::RateLimited { retry_after_secs } => Some(retry_after_secs.max(1)),
            ApiError::Unavailable(_) => Some(common::ops::RETRY_AFTER_SECONDS),
            ApiError::Busy(_) => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => {
                ApiError::unprocessable("invalid_body", e.body_text())
            }
            JsonRejection::MissingJsonContentType(e) => {
                ApiError::UnsupportedMediaType(e.body_text())
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge(e.body_text())
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<FormRejection> for ApiError {
    fn from(r: FormRejection) -> Self {
        match r {
            FormRejection::FailedToDeserializeForm(e) => {
                ApiError::unprocessable("invalid_body", e.body_text())
            }
            FormRejection::FailedToDeserializeFormBody(e) => {
                ApiError::unprocessable("invalid_body", e.body_text())
            }
            FormRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge(e.body_text())
            }
            FormRejection::InvalidFormContentType(e) => {
                ApiError::UnsupportedMediaType(e.body_text())
            }
            other => ApiError::BadRequest(other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::unprocessable("invalid_query", r.body_text())
    }
}

impl<E> From<crate::commands::CommandError<E>> for ApiError
where
    E: std::error::Error + Into<ApiError>,
{
    fn from(e: crate::commands::CommandError<E>) -> Self {
        use crate::commands::CommandError::*;
        match e {
            Domain(e) => e.into(),
            Conflict => ApiError::Conflict(
                "conflict",
                "the resource was changed concurrently; retry".into(),
            ),
            Unavailable => ApiError::Unavailable("postgres"),
            Internal(cause) => ApiError::Internal(anyhow::anyhow!(cause)),
        }
    }
}

/// The read side's database: unreachable → 503, anything else → 500 (see [`ApiError::from_db`]).
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::from_db(e)
    }
}

/// The event store, read or written: the same mapping as a command's error.
impl<E> From<AggregateError<E>> for ApiError
where
    E: std::error::Error + Into<ApiError>,
{
    fn from(e: AggregateError<E>) -> Self {
        ApiError::from_aggregate(e)
    }
}

impl From<crate::passwords::PasswordError> for ApiError {
    fn from(e: crate::passwords::PasswordError) -> Self {
        match e {
            crate::passwords::PasswordError::Busy => ApiError::Busy(e.to_string()),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<crate::domain::admin::AdminError> for ApiError {
    fn from(e: crate::domain::admin::AdminError) -> Self {
        use crate::domain::admin::AdminError::*;
        match e {
            AlreadyExists => ApiError::Conflict("already_seeded", e.to_string()),
            InvalidCredentials => ApiError::Unauthorized("invalid_credentials", e.to_string()),
            WrongPassword => ApiError::Forbidden("wrong_password", e.to_string()),
            Busy => ApiError::Busy(e.to_string()),
        }
    }
}

impl From<crate::domain::session::SessionError> for ApiError {
    fn from(e: crate::domain::session::SessionError) -> Self {
        use crate::domain::session::SessionError::*;
        match e {
            AlreadyOpen => ApiError::Conflict("session_exists", e.to_string()),
            NotOpen => ApiError::Unauthorized("token_revoked", e.to_string()),
        }
    }
}

impl From<crate::domain::platform_user::PlatformUserError> for ApiError {
    fn from(e: crate::domain::platform_user::PlatformUserError) -> Self {
        use crate::domain::platform_user::PlatformUserError::*;
        match e {
            SelfReport => ApiError::unprocessable("self_report", e.to_string()),
            AlreadyReported => ApiError::Conflict("already_reported", e.to_string()),
            NoPendingBan => ApiError::Conflict("no_pending_ban", e.to_string()),
            NotBanned => ApiError::Conflict("not_banned", e.to_string()),
            AlreadyAppealed => ApiError::Conflict("already_appealed", e.to_string()),
            UnknownAppeal => ApiError::NotFound(e.to_string()),
            AppealDecided => ApiError::Conflict("already_decided", e.to_string()),
        }
    }
}

impl From<crate::domain::phone_number::PhoneError> for ApiError {
    fn from(e: crate::domain::phone_number::PhoneError) -> Self {
        use crate::domain::phone_number::PhoneError::*;
        match e {
            UnknownReport => ApiError::NotFound(e.to_string()),
            AlreadyDecided(_) => ApiError::Conflict("already_decided", e.to_string()),
            NotListed => ApiError::Conflict("not_listed", e.to_string()),
            AlreadyDisputed => ApiError::Conflict("already_disputed", e.to_string()),
            UnknownDispute => ApiError::NotFound(e.to_string()),
            DisputeDecided => ApiError::Conflict("already_decided", e.to_string()),
        }
    }
}

impl From<crate::domain::worker::WorkerError> for ApiError {
    fn from(e: crate::domain::worker::WorkerError) -> Self {
        use crate::domain::worker::WorkerError::*;
        match e {
            AlreadyRegistered => ApiError::Conflict("worker_exists", e.to_string()),
            Unknown => ApiError::NotFound(e.to_string()),
            AlreadyRevoked => ApiError::Conflict("already_revoked", e.to_string()),
        }
    }
}

impl From<crate::domain::platform::PlatformError> for ApiError {
    fn from(e: crate::domain::platform::PlatformError) -> Self {
        use crate::domain::platform::PlatformError::*;
        match e {
            AlreadyRegistered => ApiError::Conflict("platform_exists", e.to_string()),
            Unknown => ApiError::NotFound(e.to_string()),
            AlreadyRevoked => ApiError::Conflict("already_revoked", e.to_string()),
            NoWebhook => ApiError::Conflict("no_webhook", e.to_string()),
        }
    }
}

impl From<crate::domain::voice_task::VoiceTaskError> for ApiError {
    fn from(e: crate::domain::voice_task::VoiceTaskError) -> Self {
        use crate::domain::voice_task::VoiceTaskError::*;
        match e {
            UnknownUpload => ApiError::unprocessable("upload_missing", e.to_string()),
            UploadExists => ApiError::Conflict("upload_exists", e.to_string()),
            InvalidTransition(..) => ApiError::Conflict("invalid_state", e.to_string()),
            NotHolder => ApiError::Conflict("not_holder", e.to_string()),
            NotStarted => ApiError::Conflict("not_started", e.to_string()),
            RecordingDeleted => ApiError::Conflict("recording_deleted", e.to_string()),
        }
    }
}

/// 404 for unknown routes, in the API's error shape.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::CommandError;
    use crate::domain::voice_task::VoiceTaskError;

    /// An internal error keeps the chain of its causes for the log (the client sees none).
    #[test]
    fn an_internal_error_keeps_its_causes() {
        let e = ApiError::from_db(sqlx::Error::RowNotFound);
        let logged = e.to_string();
        assert!(
            logged.contains("database") && logged.contains("no rows"),
            "{logged}"
        );
        assert_eq!(
            e.into_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    /// The HTTP layer maps a command's outcome once; each domain error has its own answer.
    #[test]
    fn a_command_error_maps_to_its_http_answer() {
        let refused = CommandError::Domain(VoiceTaskError::NotHolder);
        assert!(matches!(
            ApiError::from(refused),
            ApiError::Conflict("not_holder", _)
        ));
        assert!(matches!(
            ApiError::from(CommandError::<VoiceTaskError>::Conflict),
            ApiError::Conflict("conflict", _)
        ));
        assert!(matches!(
            ApiError::from(CommandError::<VoiceTaskError>::Unavailable),
            ApiError::Unavailable(_)
        ));
    }

    /// The store's errors convert with `?`: an unreachable database is a 503 with `Retry-After`,
    /// an event-store conflict a 409, a domain refusal its own answer.
    #[test]
    fn store_errors_convert_with_the_question_mark() {
        fn read() -> Result<()> {
            Err(sqlx::Error::PoolTimedOut)?
        }
        let resp = read().unwrap_err().into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().contains_key(header::RETRY_AFTER));
        let conflict: AggregateError<VoiceTaskError> = AggregateError::AggregateConflict;
        assert!(matches!(
            ApiError::from(conflict),
            ApiError::Conflict("conflict", _)
        ));
        let refused = AggregateError::UserError(VoiceTaskError::NotHolder);
        assert!(matches!(
            ApiError::from(refused),
            ApiError::Conflict("not_holder", _)
        ));
    }
}
