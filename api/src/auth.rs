//! Admin access tokens: short-lived HS256 JWTs with a token id (`jti`), refused once revoked.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::session::Session;
use crate::error::ApiError;
use crate::kv_set::KvSet;

const AUDIENCE: &str = "blacklist-admin";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    jti: Uuid,
    iat: i64,
    exp: i64,
    aud: String,
}

/// An issued token.
pub struct Issued {
    pub token: String,
    pub token_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

pub struct AdminTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
    revoked: Arc<KvSet<Uuid>>,
}

impl AdminTokens {
    pub fn new(secret: &[u8], ttl_seconds: i64, revoked: Arc<KvSet<Uuid>>) -> Self {
        AdminTokens {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl: Duration::seconds(ttl_seconds),
            revoked,
        }
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl.num_seconds()
    }

    /// A token id and expiry for a login about to be recorded.
    pub fn prepare(&self, now: DateTime<Utc>) -> (Uuid, DateTime<Utc>) {
        (Uuid::new_v4(), now + self.ttl)
    }

    pub fn sign(
        &self,
        username: &str,
        token_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Result<Issued, ApiError> {
        let claims = Claims {
            sub: username.to_owned(),
            jti: token_id,
            iat: (expires_at - self.ttl).timestamp(),
            exp: expires_at.timestamp(),
            aud: AUDIENCE.to_owned(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("signing token")))?;
        Ok(Issued {
            token,
            token_id,
            expires_at,
        })
    }

    pub fn verify(&self, token: &str) -> Result<AdminSession, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 5;
        let data = decode::<Claims>(token, &self.decoding, &validation).map_err(|_| {
            ApiError::Unauthorized(
                "invalid_token",
                "the access token is invalid or expired".into(),
            )
        })?;
        if self.revoked.contains(&data.claims.jti) {
            return Err(ApiError::Unauthorized(
                "token_revoked",
                "the access token was revoked".into(),
            ));
        }
        Ok(AdminSession {
            username: data.claims.sub,
            token_id: data.claims.jti,
            expires_at: DateTime::from_timestamp(data.claims.exp, 0).unwrap_or_else(Utc::now),
        })
    }
}

/// An authenticated admin (extractor: `Authorization: Bearer <access_token>`).
#[derive(Debug, Clone)]
pub struct AdminSession {
    pub username: String,
    pub token_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// What checking an admin token needs: the signing keys, the sessions this instance has seen
/// open, and the sessions' events (a part of the api's state, taken with `FromRef`).
#[derive(Clone)]
pub struct AdminAuth {
    pub tokens: Arc<AdminTokens>,
    pub known_sessions: Arc<KnownSessions>,
    pub session_store:
        Arc<cqrs_es::persist::PersistedEventStore<postgres_es::PostgresEventRepository, Session>>,
}

impl<S: Send + Sync> FromRequestParts<S> for AdminSession
where
    AdminAuth: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AdminAuth::from_ref(state);
        let token = bearer(parts).ok_or_else(|| {
            ApiError::Unauthorized("missing_token", "an admin access token is required".into())
        })?;
        let session = state.tokens.verify(token)?;
        // A signature alone is not enough: the token must be the one its login recorded (its
        // `jti` an open session of its `sub`). Checked once per token and instance.
        if !state
            .known_sessions
            .contains(session.token_id, &session.username)
        {
            use cqrs_es::{AggregateContext, EventStore};
            let mut ctx = state
                .session_store
                .load_aggregate(&session.token_id.to_string())
                .await
                .map_err(ApiError::from_aggregate)?;
            if !ctx.aggregate().is_open_for(&session.username) {
                return Err(ApiError::Unauthorized(
                    "invalid_token",
                    "the access token matches no session".into(),
                ));
            }
            state
                .known_sessions
                .insert(session.token_id, &session.username);
        }
        Ok(session)
    }
}

/// Token ids this instance has found to be open sessions (a logout revokes them through
/// `admin-revoked`, checked first). Bounded: it starts over past 100,000 entries.
#[derive(Default)]
pub struct KnownSessions(std::sync::Mutex<std::collections::HashMap<Uuid, String>>);

impl KnownSessions {
    fn contains(&self, token_id: Uuid, username: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&token_id)
            .is_some_and(|u| u == username)
    }

    fn insert(&self, token_id: Uuid, username: &str) {
        let mut known = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() >= 100_000 {
            known.clear();
        }
        known.insert(token_id, username.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> AdminTokens {
        AdminTokens::new(b"test-secret-test-secret-test-secret", 900, KvSet::new("t"))
    }

    #[test]
    fn a_signed_token_verifies_until_revoked() {
        let t = tokens();
        let (id, exp) = t.prepare(Utc::now());
        let issued = t.sign("admin", id, exp).unwrap();
        let s = t.verify(&issued.token).unwrap();
        assert_eq!((s.username.as_str(), s.token_id), ("admin", id));
        t.revoked.insert(id);
        assert!(matches!(
            t.verify(&issued.token),
            Err(ApiError::Unauthorized("token_revoked", _))
        ));
    }

    #[test]
    fn expired_forged_and_garbage_tokens_are_refused() {
        let t = tokens();
        let (id, _) = t.prepare(Utc::now());
        let expired = t
            .sign("admin", id, Utc::now() - Duration::seconds(60))
            .unwrap();
        assert!(t.verify(&expired.token).is_err());
        let other = AdminTokens::new(b"another-secret-another-secret-xx", 900, KvSet::new("t"));
        let (id, exp) = other.prepare(Utc::now());
        let forged = other.sign("admin", id, exp).unwrap();
        assert!(t.verify(&forged.token).is_err());
        assert!(t.verify("not.a.jwt").is_err());
    }
}
