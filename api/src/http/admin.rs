//! `/admin/seed`, `/admin/login`, `/admin/logout`, `/admin/password`.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use bytes::Bytes;
use chrono::Utc;
use cqrs_es::AggregateContext;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{FormOrJson, Json, RequestId};
use super::openapi::{constant, ErrorBody};
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::client_ip::ClientIp;
use crate::commands::execute;
use crate::config::SeedPolicy;
use crate::domain::admin::{authenticate, AdminCommand};
use crate::domain::session::SessionCommand;
use crate::error::{ApiError, Result};

/// The one admin account `/admin/seed` creates.
pub const SEED_USERNAME: &str = "admin";
/// Shortest accepted password.
pub const MIN_PASSWORD_LEN: usize = 12;
const MAX_PASSWORD_LEN: usize = 1024;

/// Creates the admin account `admin` with a random password; `Ok(password)`, shown once.
/// `409 already_seeded` when it exists (checked before paying for a hash; the command still
/// refuses a second `AdminCreated` if two race).
pub async fn seed_admin<ES: cqrs_es::EventStore<crate::domain::admin::Admin>>(
    admins: &cqrs_es::CqrsFramework<crate::domain::admin::Admin, ES>,
    admin_store: &ES,
    passwords: &crate::passwords::Passwords,
    ctx: &crate::commands::CommandContext,
) -> Result<String> {
    let mut existing = admin_store
        .load_aggregate(SEED_USERNAME)
        .await
        .map_err(ApiError::from_aggregate)?;
    if existing.aggregate().exists() {
        return Err(ApiError::Conflict(
            "already_seeded",
            "the admin account already exists".into(),
        ));
    }
    let password = crate::passwords::generate(24);
    let hash = passwords.hash(password.clone()).await?;
    let cmd = AdminCommand::Create {
        username: SEED_USERNAME.into(),
        password_hash: hash,
    };
    execute(admins, SEED_USERNAME, cmd, ctx).await?;
    tracing::info!("admin account seeded");
    Ok(password)
}

#[utoipa::path(
    post,
    path = "/admin/seed",
    operation_id = "seedAdmin",
    tag = "admin",
    summary = "Create the admin account (first call only)",
    description = "First call only: creates the `admin` account with a random password (shown once). Afterwards 409. When ADMIN_SETUP_TOKEN is set, the request needs the header `X-Setup-Token` with it (wrong guesses count like failed logins); in production without ADMIN_SETUP_TOKEN seeding over HTTP is off (use `api admin-create`).",
    security(()),
    params(
        ("X-Setup-Token" = Option<String>, Header, description = "ADMIN_SETUP_TOKEN, when the server has one")
    ),
    responses(
        (status = 201, description = "The admin account was created; the password is shown once.", body = SeedResult),
        (status = 409, description = "Conflict. Codes: `already_seeded`, `conflict`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 403, description = "setup_token_required: ADMIN_SETUP_TOKEN is set and the header is missing or wrong; seed_disabled: production without ADMIN_SETUP_TOKEN", body = ErrorBody),
        (status = 429, description = "rate_limited (Retry-After): too many wrong setup tokens from this client", body = ErrorBody)
    )
)]
#[tracing::instrument(skip_all)]
pub async fn seed(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    headers: axum::http::HeaderMap,
) -> Result<impl IntoResponse> {
    match &s.seed_policy {
        SeedPolicy::Open => {}
        SeedPolicy::Closed => {
            return Err(ApiError::Forbidden(
                "seed_disabled",
                "seeding over HTTP is off in production: set ADMIN_SETUP_TOKEN, or run `api admin-create`".into(),
            ))
        }
        SeedPolicy::Token(expected) => {
            // Guesses count like failed logins.
            let attempt = s
                .login_limiter
                .reserve(ip, Instant::now())
                .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
            let given = headers
                .get("x-setup-token")
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !constant_time_eq(given, expected.as_bytes()) {
                return Err(ApiError::Forbidden(
                    "setup_token_required",
                    "seeding needs the X-Setup-Token header with ADMIN_SETUP_TOKEN".into(),
                ));
            }
            s.login_limiter.release(attempt);
        }
    }
    let password = seed_admin(
        &s.admins,
        &*s.admin_store,
        &s.passwords,
        &rid.context(format!("ip:{ip}")),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(SeedResult {
            username: SEED_USERNAME,
            password,
        }),
    ))
}

/// Compares without revealing where two byte strings differ (setup and metrics tokens).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(min_length = 1, max_length = 256)]
    username: String,
    #[schema(max_length = 1024)]
    password: String,
}

/// OAuth2-style token response (snake_case).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// HS256 JWT (audience `blacklist-admin`).
    pub access_token: String,
    #[schema(value_type = Bearer, inline)]
    pub token_type: &'static str,
    /// Lifetime in seconds (default 900).
    pub expires_in: i64,
}

#[derive(Serialize, ToSchema)]
pub struct SeedResult {
    #[schema(value_type = AdminName, inline)]
    pub username: &'static str,
    /// A random password, shown once.
    pub password: String,
}

constant!(Bearer, "bearer");
constant!(AdminName, "admin");

#[utoipa::path(
    post,
    path = "/admin/login",
    operation_id = "adminLogin",
    tag = "admin",
    summary = "Log in and get an admin access token",
    description = "Form fields `username` and `password` (JSON also accepted when `Content-Type: application/json`). Repeated failures from one IP are rate limited (429 with `Retry-After`).",
    security(()),
    request_body(content((LoginRequest = "application/x-www-form-urlencoded"), (LoginRequest = "application/json"))),
    responses(
        (status = 200, description = "An access token.", body = TokenResponse),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials. Codes: `invalid_credentials`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_body`.", body = ErrorBody),
        (status = 429, description = "rate_limited (Retry-After): 10 failed logins within a minute from this client (an IPv4 address or an IPv6 /64); attempts count before the password is checked", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "busy (Retry-After: 1): more password checks at once than this instance runs and queues; or a dependency is down", body = ErrorBody)
    )
)]
#[tracing::instrument(skip_all, fields(ip = %ip))]
pub async fn login(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    FormOrJson(form): FormOrJson<LoginRequest>,
) -> Result<impl IntoResponse> {
    // The attempt is counted before the password is checked (and given back on success), so
    // concurrent wrong passwords cannot all pass the limit before the first failure lands.
    let attempt = s
        .login_limiter
        .reserve(ip, Instant::now())
        .map_err(|retry_after_secs| ApiError::RateLimited { retry_after_secs })?;
    if form.username.is_empty()
        || form.username.len() > 256
        || form.password.len() > MAX_PASSWORD_LEN
    {
        return Err(ApiError::Unauthorized(
            "invalid_credentials",
            "invalid username or password".into(),
        ));
    }
    if let Err(e) = authenticate(&*s.admin_store, &s.passwords, &form.username, form.password).await
    {
        let e = ApiError::from_aggregate(e);
        if matches!(e, ApiError::Unauthorized(..)) {
            metrics::counter!("admin_login_failures_total").increment(1);
            tracing::info!(username = form.username, "admin login refused");
        } else {
            // Not a wrong password (busy, a database outage): it does not count against the client.
            s.login_limiter.release(attempt);
        }
        return Err(e);
    }
    s.login_limiter.release(attempt);
    let (token_id, expires_at) = s.tokens.prepare(Utc::now());
    let cmd = SessionCommand::Open {
        token_id,
        username: form.username.clone(),
        expires_at,
        ip: Some(ip.to_string()),
    };
    let ctx = rid.context(format!("admin:{}", form.username));
    execute(&s.sessions, &token_id.to_string(), cmd, &ctx).await?;
    let issued = s.tokens.sign(&form.username, token_id, expires_at)?;
    Ok(axum::Json(TokenResponse {
        access_token: issued.token,
        token_type: "bearer",
        expires_in: s.tokens.ttl_seconds(),
    }))
}

#[utoipa::path(
    post,
    path = "/admin/logout",
    operation_id = "adminLogout",
    tag = "admin",
    summary = "Revoke the current admin token",
    security(("adminBearer" = [])),
    responses(
        (status = 204, description = "Logged out; the token is refused from then on on every API instance."),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `conflict`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(admin = %session.username))]
pub async fn logout(
    State(s): State<AppState>,
    session: AdminSession,
    rid: RequestId,
) -> Result<StatusCode> {
    let ctx = rid.context(format!("admin:{}", session.username));
    end_session(&s, session.token_id, session.expires_at, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Closes a session (an event) and revokes its token on every instance: refused here at once,
/// elsewhere as soon as the KV entry arrives (milliseconds). The projector writes the same entry
/// from the event, so a failed put here is not lost.
async fn end_session(
    s: &AppState,
    token_id: uuid::Uuid,
    expires_at: chrono::DateTime<Utc>,
    ctx: &crate::commands::CommandContext,
) -> Result<()> {
    execute(
        &s.sessions,
        &token_id.to_string(),
        SessionCommand::Close,
        ctx,
    )
    .await?;
    s.revoked_tokens.insert(token_id);
    let put = match s
        .js
        .get_key_value(events::topology::ADMIN_REVOKED_BUCKET)
        .await
    {
        Ok(kv) => kv
            .put(token_id.to_string(), Bytes::from(expires_at.to_rfc3339()))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(error) = put {
        tracing::warn!(%error, "revocation not written to KV yet; the projector will write it");
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    current_password: String,
    /// 12 to 1024 characters, different from the current one.
    #[schema(min_length = 12, max_length = 1024)]
    new_password: String,
}

#[utoipa::path(
    post,
    path = "/admin/password",
    operation_id = "changeAdminPassword",
    tag = "admin",
    summary = "Change the admin password",
    security(("adminBearer" = [])),
    request_body(content = ChangePasswordRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "Password changed."),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 403, description = "Forbidden. Codes: `wrong_password`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `weak_password`, `invalid_body`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(admin = %session.username))]
pub async fn change_password(
    State(s): State<AppState>,
    session: AdminSession,
    rid: RequestId,
    Json(body): Json<ChangePasswordRequest>,
) -> Result<StatusCode> {
    let len = body.new_password.chars().count();
    if len < MIN_PASSWORD_LEN || body.new_password.len() > MAX_PASSWORD_LEN {
        return Err(ApiError::unprocessable(
            "weak_password",
            format!("the new password needs {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"),
        ));
    }
    if body.new_password == body.current_password {
        return Err(ApiError::unprocessable(
            "weak_password",
            "the new password must differ from the current one",
        ));
    }
    let new_password_hash = s.passwords.hash(body.new_password).await?;
    let cmd = AdminCommand::ChangePassword {
        current_password: body.current_password,
        new_password_hash,
    };
    let ctx = rid.context(format!("admin:{}", session.username));
    execute(&s.admins, &session.username, cmd, &ctx).await?;
    // A new password ends every other session of this admin (the one asking stays signed in).
    let others: Vec<(uuid::Uuid, chrono::DateTime<Utc>)> = sqlx::query_as(
        "SELECT token_id, expires_at FROM admin_sessions
          WHERE username = $1 AND revoked_at IS NULL AND expires_at > now() AND token_id <> $2",
    )
    .bind(&session.username)
    .bind(session.token_id)
    .fetch_all(&s.pool)
    .await
    .map_err(ApiError::from_db)?;
    for (token_id, expires_at) in others {
        match end_session(&s, token_id, expires_at, &ctx).await {
            // Already closed meanwhile.
            Ok(()) | Err(ApiError::Unauthorized(..)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
