//! Host platforms' API keys: `Authorization: Bearer blp_…` on every `/platform/*` endpoint.

use std::sync::Arc;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateContext, EventStore};
use postgres_es::PostgresEventRepository;
use uuid::Uuid;

use crate::auth::bearer;
use crate::domain::platform::{key_platform_id, Platform};
use crate::error::ApiError;

/// The platform a request's key belongs to (registered, not revoked). Not `Debug`: it holds the
/// key.
#[derive(Clone)]
pub struct HostPlatform {
    pub id: Uuid,
    pub name: String,
    /// Where its decisions are POSTed, if anywhere.
    pub webhook: Option<String>,
    /// The key it came with (a long stream checks it again).
    pub key: String,
}

/// What checking a platform key needs (a part of the api's state, taken with `FromRef`).
#[derive(Clone)]
pub struct PlatformAuth {
    pub store: Arc<PersistedEventStore<PostgresEventRepository, Platform>>,
}

impl<S: Send + Sync> FromRequestParts<S> for HostPlatform
where
    PlatformAuth: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let key = bearer(parts).ok_or_else(|| {
            ApiError::Unauthorized(
                "missing_key",
                "a platform API key is required (Authorization: Bearer <key>)".into(),
            )
        })?;
        let refused =
            || ApiError::Unauthorized("invalid_key", "unknown or revoked platform key".into());
        // A key that does not even parse costs no database read.
        let id = key_platform_id(key).ok_or_else(refused)?;
        let auth = PlatformAuth::from_ref(state);
        let mut ctx = auth
            .store
            .load_aggregate(&id.to_string())
            .await
            .map_err(ApiError::from_aggregate)?;
        let platform = ctx.aggregate();
        if !platform.accepts(key) {
            metrics::counter!("platform_auth_refused_total").increment(1);
            return Err(refused());
        }
        Ok(HostPlatform {
            id,
            name: platform.name().unwrap_or_default().to_owned(),
            webhook: platform.webhook().map(str::to_owned),
            key: key.to_owned(),
        })
    }
}
