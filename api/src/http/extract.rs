//! Extractors that turn every malformed input into the API's JSON errors.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::commands::CommandContext;
use crate::error::ApiError;

/// JSON body; rejections become 400/415/422/413 in the API's shape.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|j| Json(j.0))
            .map_err(ApiError::from)
    }
}

/// Query string; rejections become 422 in the API's shape.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(ApiError::from)
    }
}

/// A form (`application/x-www-form-urlencoded`) or, when the content type says so, JSON.
pub struct FormOrJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for FormOrJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if is_json {
            Json::<T>::from_request(req, state)
                .await
                .map(|j| FormOrJson(j.0))
        } else {
            axum::Form::<T>::from_request(req, state)
                .await
                .map(|f| FormOrJson(f.0))
                .map_err(ApiError::from)
        }
    }
}

/// The request id (set by the request-id layer), used as the correlation id of commands.
pub struct RequestId(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(
            parts
                .headers
                .get(super::REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        ))
    }
}

impl RequestId {
    pub fn context(self, actor: impl Into<String>) -> CommandContext {
        CommandContext::new(actor, self.0)
    }
}

/// An optional free-text field: trimmed, absent when blank, and a 422 `code` when longer
/// than `max` characters.
pub fn optional_text(
    value: Option<String>,
    field: &str,
    code: &'static str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    // NUL cannot be stored (Postgres text and jsonb refuse it): dropped.
    let text = value
        .map(|v| v.replace('\0', "").trim().to_owned())
        .filter(|v| !v.is_empty());
    if text.as_ref().is_some_and(|t| t.chars().count() > max) {
        return Err(ApiError::unprocessable(
            code,
            format!("{field} may have at most {max} characters"),
        ));
    }
    Ok(text)
}

/// A plausible email address (the provider has the last word).
pub fn valid_email(e: &str) -> bool {
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
            .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',')
}

/// An optional contact address as a client sent it (blank: none); 422 `invalid_email` else.
pub fn contact_email(raw: Option<String>, field: &str) -> Result<Option<String>, ApiError> {
    let email = raw.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    if email.as_deref().is_some_and(|e| !valid_email(e)) {
        return Err(ApiError::unprocessable(
            "invalid_email",
            format!("{field} is not an email address"),
        ));
    }
    Ok(email)
}

/// Longest display name of a worker or a platform.
pub const MAX_NAME_CHARS: usize = 100;

/// A required display name: trimmed, 1 to 100 characters, else 422 `invalid_name`.
pub fn display_name(value: Option<String>) -> Result<String, ApiError> {
    let name = value
        .as_deref()
        .map(|v| v.replace('\0', ""))
        .unwrap_or_default()
        .trim()
        .to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::unprocessable(
            "invalid_name",
            format!("name needs 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(name)
}

/// The session user of a request admitted by `limiter` for `ip`, read only after the limit:
/// reading a session records the address, so a flood cannot feed a user's IP history.
pub async fn limited_session_user(
    state: &crate::app::AppState,
    limiter: &crate::ratelimit::RateLimiter,
    ip: std::net::IpAddr,
    parts: &mut axum::http::request::Parts,
) -> Result<crate::session_auth::PlatformUser, ApiError> {
    crate::ratelimit::rate_limit(limiter, ip)?;
    <crate::session_auth::PlatformUser as axum::extract::FromRequestParts<crate::app::AppState>>::from_request_parts(parts, state).await
}
