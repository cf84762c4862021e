//! Cloudflare Turnstile on public writes: the body's `turnstileToken` is verified server-side
//! against `TURNSTILE_VERIFY_URL` (Cloudflare's siteverify protocol).
//!
//! Off when no `TURNSTILE_SECRET_KEY` is configured (logged at start; refused in production).

use std::net::IpAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::ApiError;

pub const CLOUDFLARE_SITEVERIFY: &str = "https://challenges.cloudflare.com/turnstile/v0/siteverify";

pub struct Turnstile {
    secret: Option<String>,
    url: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct SiteVerify {
    success: bool,
    #[serde(default, rename = "error-codes")]
    error_codes: Vec<String>,
}

impl Turnstile {
    pub fn new(secret: Option<String>, url: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("a plain HTTP client builds");
        Turnstile {
            secret: secret.filter(|s| !s.is_empty()),
            url,
            http,
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.secret.is_some()
    }

    /// `Ok` when the check is off or the token is good. A missing, invalid or reused token is
    /// 403 `captcha_failed`; Turnstile unreachable or failing is 503 with `Retry-After`.
    pub async fn verify(&self, token: Option<&str>, ip: IpAddr) -> Result<(), ApiError> {
        let Some(secret) = &self.secret else {
            return Ok(());
        };
        let failed = |why: &str| {
            ApiError::Forbidden("captcha_failed", format!("the captcha check failed: {why}"))
        };
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| failed("no turnstileToken"))?;
        if token.len() > 2048 {
            return Err(failed("the token is malformed"));
        }
        let form = [
            ("secret", secret.as_str()),
            ("response", token),
            ("remoteip", &ip.to_string()),
        ];
        let resp = self
            .http
            .post(&self.url)
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "turnstile unreachable");
                ApiError::Unavailable("turnstile")
            })?;
        if resp.status().is_server_error() {
            tracing::warn!(status = %resp.status(), "turnstile failed");
            return Err(ApiError::Unavailable("turnstile"));
        }
        let body: SiteVerify = resp.json().await.map_err(|e| {
            tracing::warn!(error = %e, "turnstile answered something that is not siteverify");
            ApiError::Unavailable("turnstile")
        })?;
        metrics::counter!("turnstile_checks_total", "success" => body.success.to_string())
            .increment(1);
        if body.success {
            return Ok(());
        }
        let codes = body.error_codes;
        if codes.iter().any(|c| c == "internal-error") {
            return Err(ApiError::Unavailable("turnstile"));
        }
        if codes
            .iter()
            .any(|c| c == "missing-input-secret" || c == "invalid-input-secret")
        {
            tracing::error!(?codes, "TURNSTILE_SECRET_KEY is wrong");
            return Err(ApiError::Unavailable("turnstile"));
        }
        let why = match codes.first().map(String::as_str) {
            Some("timeout-or-duplicate") => "the token expired or was already used",
            Some("missing-input-response") => "no turnstileToken",
            _ => "the token is invalid",
        };
        Err(failed(why))
    }
}
