//! Disputes of listed phone numbers: the number's owner disputes a `dangerous` listing from the
//! number's page (Turnstile, a contact email for the outcome), moderators uphold or overturn it
//! (overturn rejects the approved reports, so the number is no longer listed).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use events::phone_number::PhoneNumberEvent;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use uuid::Uuid;

use super::appeals::{
    outcome_of, queue_page, AppealDecisionRequest, AppealQuery, AppealStatus, MAX_APPEAL_CHARS,
    MAX_NOTE_CHARS,
};
use super::extract::{contact_email, optional_text, Json, Query, RequestId};
use super::openapi::{ErrorBody, Forbidden};
use crate::app::AppState;
use crate::auth::AdminSession;
use crate::client_ip::ClientIp;
use crate::commands::execute_returning;
use crate::domain::phone_number::PhoneCommand;
use crate::error::{ApiError, Result};
use crate::ratelimit::rate_limit;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeRequest {
    /// Why the listing is wrong, 1 to 4000 characters.
    #[schema(required = true, max_length = 4000)]
    text: Option<String>,
    /// Where to send the outcome (required; never shown, never on the event stream).
    #[schema(required = true, max_length = 254)]
    contact_email: Option<String>,
    /// ISO 3166 region for a number without a leading +, e.g. US.
    region: Option<String>,
    #[schema(max_length = 2048)]
    turnstile_token: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeCreated {
    pub dispute_id: Uuid,
    pub phone_number: String,
    /// Always `pending`.
    pub status: &'static str,
}

#[utoipa::path(
    post,
    path = "/client/phones/{phone_number}/dispute",
    operation_id = "disputePhoneListing",
    tag = "appeals",
    summary = "Dispute a number's dangerous listing",
    description = "For the number's owner. Public, Turnstile-protected, rate limited per IP. Only a number listed `dangerous` can be disputed, one open dispute at a time; after a dispute is upheld, again only once a new report was approved. The outcome is emailed to `contactEmail`.",
    security(()),
    params(("phone_number" = String, Path, description = "The number, E.164 or national with `region`.")),
    request_body(content = DisputeRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Dispute filed; a moderator will decide it.", body = DisputeCreated),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 403, description = "Forbidden. A banned IP gets the `AccessDenied` body (`access_denied`) before any other processing. Codes: `captcha_failed`, `access_denied`.", body = Forbidden),
        (status = 409, description = "Conflict. Codes: `not_listed`, `already_disputed`, `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_phone_number`, `text_required`, `text_too_long`, `email_required`, `invalid_email`, `invalid_body`.", body = ErrorBody),
        (status = 429, description = "Rate limited. Codes: `rate_limited`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying."))),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(ip = %ip))]
pub async fn dispute(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    rid: RequestId,
    Path(raw): Path<String>,
    Json(body): Json<DisputeRequest>,
) -> Result<impl IntoResponse> {
    rate_limit(&s.public_writes, ip)?;
    let e164 = super::phones::number(&raw, body.region.as_deref())?;
    let text = optional_text(body.text, "text", "text_too_long", MAX_APPEAL_CHARS)?
        .ok_or_else(|| ApiError::unprocessable("text_required", "text is required"))?;
    let email = contact_email(body.contact_email, "contactEmail")?.ok_or_else(|| {
        ApiError::unprocessable(
            "email_required",
            "contactEmail is required: the outcome is sent there",
        )
    })?;
    s.turnstile
        .verify(body.turnstile_token.as_deref(), ip)
        .await?;
    let dispute_id = Uuid::new_v4();
    let cmd = PhoneCommand::Dispute {
        dispute_id,
        text,
        email: Some(email),
    };
    execute_returning(
        &s.phones,
        &s.pool,
        &e164,
        cmd,
        &rid.context(format!("ip:{ip}")),
    )
    .await?;
    metrics::counter!("phone_disputes_total").increment(1);
    Ok((
        StatusCode::CREATED,
        axum::Json(DisputeCreated {
            dispute_id,
            phone_number: e164,
            status: "pending",
        }),
    ))
}

/// A dispute on the moderators' queue.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeView {
    pub dispute_id: Uuid,
    pub phone_number: String,
    pub text: String,
    #[schema(value_type = AppealStatus)]
    pub status: String,
    pub submitted_at: DateTime<Utc>,
    #[schema(required = true)]
    pub decided_at: Option<DateTime<Utc>>,
    #[schema(required = true)]
    pub decided_by: Option<String>,
    #[schema(required = true)]
    pub note: Option<String>,
    /// The number's status now (`dangerous`, `suspicious`, `unknown`).
    #[schema(value_type = super::openapi::PhoneStatus)]
    pub number_status: String,
    /// Approved reports of the number now.
    pub approved_reports: i64,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeList {
    pub disputes: Vec<DisputeView>,
    pub count: i64,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/admin/phone-disputes",
    operation_id = "listPhoneDisputes",
    tag = "appeals",
    summary = "The phone disputes queue",
    description = "Oldest first, a page at a time.",
    security(("adminBearer" = [])),
    params(
        ("status" = Option<String>, Query, description = "`pending` (default), `upheld`, `overturned` or `all`."),
        ("limit" = Option<i64>, Query, description = "Page size, 1 to 500 (default 50).", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "Opaque cursor from a previous page's `nextCursor`.")
    ),
    responses(
        (status = 200, description = "Disputes with the number each is about.", body = DisputeList),
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
    Query(q): Query<AppealQuery>,
) -> Result<impl IntoResponse> {
    let (rows, next_cursor) = queue_page(
        &s.pool,
        "SELECT q.*, n.status AS number_status, n.approved_reports
           FROM phone_disputes q LEFT JOIN phone_numbers n ON n.phone_number = q.phone_number",
        "dispute_id",
        &q,
    )
    .await?;
    let disputes: Vec<DisputeView> = rows
        .iter()
        .map(|r| DisputeView {
            dispute_id: r.get("dispute_id"),
            phone_number: r.get("phone_number"),
            text: r.get("text"),
            status: r.get("status"),
            submitted_at: r.get("created_at"),
            decided_at: r.get("decided_at"),
            decided_by: r.get("decided_by"),
            note: r.get("note"),
            number_status: r
                .get::<Option<String>, _>("number_status")
                .unwrap_or_else(|| "unknown".into()),
            approved_reports: r
                .get::<Option<i32>, _>("approved_reports")
                .unwrap_or(0)
                .into(),
        })
        .collect();
    Ok(axum::Json(DisputeList {
        count: disputes.len() as i64,
        disputes,
        next_cursor,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeDecided {
    pub dispute_id: Uuid,
    pub phone_number: String,
    #[schema(value_type = AppealStatus)]
    pub status: &'static str,
    /// The approved reports rejected by an overturn.
    pub cleared_reports: Vec<Uuid>,
}

#[utoipa::path(
    post,
    path = "/admin/phone-disputes/{dispute_id}/decision",
    operation_id = "decidePhoneDispute",
    tag = "appeals",
    summary = "Uphold or overturn a phone dispute",
    description = "`overturn` rejects every approved report of the number, so it is no longer listed `dangerous`; `uphold` leaves the listing. The outcome is emailed to the disputer.",
    security(("adminBearer" = [])),
    params(("dispute_id" = Uuid, Path, description = "The dispute.")),
    request_body(content = AppealDecisionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Decision recorded.", body = DisputeDecided),
        (status = 400, description = "Malformed request body. Codes: `bad_request`.", body = ErrorBody),
        (status = 401, description = "Missing or invalid credentials. Codes: `missing_token`, `invalid_token`, `token_revoked`.", body = ErrorBody),
        (status = 404, description = "No such dispute. Codes: `not_found`.", body = ErrorBody),
        (status = 409, description = "Conflict. Codes: `already_decided`, `conflict`.", body = ErrorBody),
        (status = 413, description = "Payload too large. Codes: `payload_too_large`.", body = ErrorBody),
        (status = 415, description = "Unsupported media type. Codes: `unsupported_media_type`.", body = ErrorBody),
        (status = 422, description = "Well-formed but invalid. Codes: `invalid_id`, `invalid_decision`, `note_too_long`, `invalid_body`.", body = ErrorBody),
        (status = 500, description = "Internal error (no details shown). Codes: `internal_error`.", body = ErrorBody),
        (status = 503, description = "A dependency is down; retry later. Codes: `service_unavailable`.", body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying.")))
    )
)]
#[tracing::instrument(skip_all, fields(dispute = %raw_id))]
pub async fn decide(
    State(s): State<AppState>,
    admin: AdminSession,
    Path(raw_id): Path<String>,
    rid: RequestId,
    Json(body): Json<AppealDecisionRequest>,
) -> Result<impl IntoResponse> {
    let dispute_id = Uuid::parse_str(raw_id.trim())
        .map_err(|_| ApiError::unprocessable("invalid_id", "disputeId must be a UUID"))?;
    let outcome = outcome_of(body.decision.as_deref())?;
    let note = optional_text(body.note, "note", "note_too_long", MAX_NOTE_CHARS)?;
    let number: String =
        sqlx::query_scalar("SELECT phone_number FROM phone_disputes WHERE dispute_id = $1")
            .bind(dispute_id)
            .fetch_optional(&s.pool)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no dispute {dispute_id}")))?;
    let cmd = PhoneCommand::DecideDispute {
        dispute_id,
        outcome,
        moderator: admin.username.clone(),
        note,
    };
    let ctx = rid.context(format!("admin:{}", admin.username));
    let produced = execute_returning(&s.phones, &s.pool, &number, cmd, &ctx).await?;
    let cleared_reports = produced
        .into_iter()
        .find_map(|e| match e {
            PhoneNumberEvent::DisputeDecided { cleared, .. } => Some(cleared),
            _ => None,
        })
        .unwrap_or_default();
    metrics::counter!("phone_disputes_decided_total", "outcome" => outcome.as_str()).increment(1);
    Ok(axum::Json(DisputeDecided {
        dispute_id,
        phone_number: number,
        status: outcome.as_str(),
        cleared_reports,
    }))
}
