//! Host-platform session tokens: JWTs signed by the host platform (HS256 with
//! `SESSION_JWT_SECRET`, or RS256/EdDSA verified with `SESSION_JWT_PUBLIC_KEY`).
//!
//! Every request with such a token records the user's profile and client IP (the
//! `ObserveSession` command emits events only for what is new); a per-instance cache skips the
//! command when this instance already recorded the same profile and IP.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::auth::bearer;
use crate::client_ip::{ClientIp, TrustedProxies};
use crate::commands::{execute, CommandContext};
use crate::domain::platform_user::{PlatformUserCommand, Profile};
use crate::error::ApiError;
use common::ops::REQUEST_ID;

const MAX_FIELD: usize = 2048;

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    name: Option<String>,
    picture: Option<String>,
    video: Option<String>,
}

/// How host tokens are verified.
pub struct SessionVerifier {
    keys: Vec<(DecodingKey, Algorithm)>,
    rules: SessionRules,
}

/// What a host token must say beyond its signature.
#[derive(Debug, Clone, Default)]
pub struct SessionRules {
    /// `aud` must contain this (`SESSION_JWT_AUDIENCE`), when set.
    pub audience: Option<String>,
    /// `iss` must be this (`SESSION_JWT_ISSUER`), when set.
    pub issuer: Option<String>,
    /// `exp` at most this far ahead (and after `iat`, when given); 0 means the default, a day.
    pub max_lifetime_seconds: i64,
}

/// The shortest HS256 secret accepted (refused at start in production, warned about otherwise).
pub const MIN_SECRET_BYTES: usize = 32;

impl SessionVerifier {
    /// `secret` for HS256; `public_key_pem` for RS256 or EdDSA (whichever the PEM holds).
    pub fn new(
        secret: Option<&str>,
        public_key_pem: Option<&str>,
        rules: SessionRules,
    ) -> anyhow::Result<Self> {
        let mut keys = Vec::new();
        if let Some(secret) = secret.filter(|s| !s.is_empty()) {
            keys.push((
                DecodingKey::from_secret(secret.as_bytes()),
                Algorithm::HS256,
            ));
        }
        if let Some(pem) = public_key_pem.filter(|s| !s.trim().is_empty()) {
            let pem = pem.replace("\\n", "\n");
            if let Ok(k) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
                keys.push((k, Algorithm::RS256));
            } else if let Ok(k) = DecodingKey::from_ed_pem(pem.as_bytes()) {
                keys.push((k, Algorithm::EdDSA));
            } else {
                anyhow::bail!(
                    "SESSION_JWT_PUBLIC_KEY is neither an RSA nor an Ed25519 public key (PEM)"
                );
            }
        }
        Ok(SessionVerifier { keys, rules })
    }

    pub fn is_configured(&self) -> bool {
        !self.keys.is_empty()
    }

    fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let invalid = || {
            ApiError::Unauthorized(
                "invalid_token",
                "the session token is invalid or expired".into(),
            )
        };
        if self.keys.is_empty() {
            return Err(ApiError::Unauthorized(
                "sessions_not_configured",
                "this server accepts no session tokens (SESSION_JWT_SECRET is not set)".into(),
            ));
        }
        let alg = decode_header(token).map_err(|_| invalid())?.alg;
        let (key, _) = self
            .keys
            .iter()
            .find(|(_, a)| *a == alg)
            .ok_or_else(invalid)?;
        let mut validation = Validation::new(alg);
        let mut required = vec!["exp", "sub"];
        if self.rules.audience.is_some() {
            required.push("aud");
        }
        if self.rules.issuer.is_some() {
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation.validate_nbf = true;
        validation.leeway = 5;
        match &self.rules.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.rules.issuer {
            validation.set_issuer(&[iss]);
        }
        let claims = decode::<Claims>(token, key, &validation)
            .map_err(|_| invalid())?
            .claims;
        let max = match self.rules.max_lifetime_seconds {
            n if n > 0 => n,
            _ => 24 * 3600,
        };
        let now = chrono::Utc::now().timestamp();
        let from = claims.iat.map_or(now, |iat| iat.min(now));
        if claims.exp.saturating_sub(from) > max + validation.leeway as i64 {
            return Err(ApiError::Unauthorized(
                "invalid_token",
                format!("the session token lives longer than the {max} s this server accepts"),
            ));
        }
        if uuid::Uuid::parse_str(&claims.sub).is_err() {
            return Err(ApiError::Unauthorized(
                "invalid_token",
                "the session token's subject is not a user id".into(),
            ));
        }
        Ok(claims)
    }
}

/// Remembers, per user, the profile and the last few IPs this instance has already recorded, and
/// limits how often a user's session may bring a new IP to record.
pub struct ObservedSessions {
    seen: Mutex<HashMap<String, Seen>>,
    new_ips: crate::ratelimit::RateLimiter<String>,
    /// IPv6 addresses count per network of this prefix (as the aggregate and the bans do).
    v6_prefix: u8,
}

struct Seen {
    profile_hash: u64,
    /// Networks, most recent last; a user moving between a few is not recorded again and again.
    ips: Vec<String>,
}

/// Recent IPs remembered per user.
const RECENT_IPS: usize = 8;

impl ObservedSessions {
    const MAX: usize = 200_000;

    /// A new network per user every 6 minutes on average (10 an hour), 5 at once.
    pub fn new(v6_prefix: u8) -> Self {
        ObservedSessions {
            seen: Mutex::new(HashMap::new()),
            new_ips: crate::ratelimit::RateLimiter::every(std::time::Duration::from_secs(360), 5),
            v6_prefix,
        }
    }

    /// The network `ip` is remembered by.
    fn network(&self, ip: &str) -> String {
        ip.parse()
            .map(|ip| crate::client_ip::network(ip, self.v6_prefix).to_string())
            .unwrap_or_else(|_| ip.to_owned())
    }

    /// What to record: `None` when nothing changed; else whether the IP is to be recorded (a
    /// new IP beyond the user's rate is not; its profile still is).
    fn to_record(&self, user: &str, ip: &str, profile_hash: u64) -> Option<bool> {
        let net = self.network(ip);
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = seen.get(user);
        let ip_known = known.is_some_and(|s| s.ips.contains(&net));
        let profile_known = known.is_some_and(|s| s.profile_hash == profile_hash);
        drop(seen);
        if ip_known && profile_known {
            return None;
        }
        if ip_known {
            return Some(true);
        }
        let allowed = self.new_ips.check_key(user.to_owned()).is_ok();
        if !allowed {
            metrics::counter!("user_ip_observations_limited_total").increment(1);
            if profile_known {
                return None;
            }
        }
        Some(allowed)
    }

    /// Remembers the profile, and the IP when it was recorded.
    fn remember(&self, user: &str, ip: Option<&str>, profile_hash: u64) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= Self::MAX {
            seen.clear();
        }
        let entry = seen.entry(user.to_owned()).or_insert_with(|| Seen {
            profile_hash,
            ips: Vec::new(),
        });
        entry.profile_hash = profile_hash;
        if let Some(ip) = ip {
            let net = self.network(ip);
            entry.ips.retain(|i| *i != net);
            entry.ips.push(net);
            if entry.ips.len() > RECENT_IPS {
                entry.ips.remove(0);
            }
        }
    }
}

/// An authenticated host-platform user (extractor). Extracting it records the session.
#[derive(Debug, Clone)]
pub struct PlatformUser {
    pub id: String,
    pub profile: Profile,
}

fn clip(s: Option<String>) -> Option<String> {
    // NUL cannot be stored (Postgres text and jsonb refuse it): dropped, like surrounding blanks.
    s.map(|s| s.replace('\0', "").trim().to_owned())
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(MAX_FIELD).collect())
}

/// What reading a session token needs: the verifier, the sessions recently recorded, and the
/// platform users' command side (a part of the api's state, taken with `FromRef`).
#[derive(Clone)]
pub struct SessionAuth {
    pub sessions_verifier: std::sync::Arc<SessionVerifier>,
    pub observed: std::sync::Arc<ObservedSessions>,
    pub platform_users:
        std::sync::Arc<postgres_es::PostgresCqrs<crate::domain::platform_user::PlatformUser>>,
}

impl<S: Send + Sync> FromRequestParts<S> for PlatformUser
where
    SessionAuth: FromRef<S>,
    TrustedProxies: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        let state = SessionAuth::from_ref(state);
        let token = bearer(parts).ok_or_else(|| {
            ApiError::Unauthorized("missing_token", "a session token is required".into())
        })?;
        let claims = state.sessions_verifier.verify(token)?;
        let profile = Profile {
            name: clip(claims.name),
            picture: clip(claims.picture),
            video: clip(claims.video),
        };
        let user = PlatformUser {
            id: claims.sub,
            profile,
        };
        let ip = ip.to_string();
        let profile_hash = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (
                &user.profile.name,
                &user.profile.picture,
                &user.profile.video,
            )
                .hash(&mut h);
            h.finish()
        };
        if let Some(record_ip) = state.observed.to_record(&user.id, &ip, profile_hash) {
            let correlation = parts
                .headers
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let ctx = CommandContext::new(format!("user:{}", user.id), correlation);
            let cmd = PlatformUserCommand::ObserveSession {
                profile: user.profile.clone(),
                ip: record_ip.then(|| ip.clone()),
            };
            execute(&state.platform_users, &user.id, cmd, &ctx).await?;
            let recorded = record_ip.then_some(ip.as_str());
            state.observed.remember(&user.id, recorded, profile_hash);
        }
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-host-platform-secret-of-32-bytes!";

    fn token(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    fn claims(extra: serde_json::Value) -> serde_json::Value {
        let mut c = serde_json::json!({
            "sub": uuid::Uuid::new_v4().to_string(),
            "exp": chrono::Utc::now().timestamp() + 3600,
        });
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn verifier(rules: SessionRules) -> SessionVerifier {
        SessionVerifier::new(Some(SECRET), None, rules).unwrap()
    }

    /// The hardening review: tokens were accepted with `exp` 200 years ahead, a foreign
    /// `aud`/`iss` and a future `nbf`.
    #[test]
    fn lifetime_nbf_audience_and_issuer_are_enforced() {
        let now = chrono::Utc::now().timestamp();
        let plain = verifier(SessionRules::default());
        assert!(plain.verify(&token(claims(serde_json::json!({})))).is_ok());
        let forever = token(claims(serde_json::json!({"exp": now + 200 * 365 * 86_400})));
        assert!(plain.verify(&forever).is_err(), "200 years ahead");
        let old_iat = token(claims(serde_json::json!({"iat": now - 3 * 86_400})));
        assert!(plain.verify(&old_iat).is_err(), "issued for days");
        let early = token(claims(serde_json::json!({"nbf": now + 600})));
        assert!(plain.verify(&early).is_err(), "not valid yet");

        let strict = verifier(SessionRules {
            audience: Some("blacklist".into()),
            issuer: Some("https://video.example".into()),
            max_lifetime_seconds: 0,
        });
        let ok = token(claims(
            serde_json::json!({"aud": "blacklist", "iss": "https://video.example"}),
        ));
        assert!(strict.verify(&ok).is_ok());
        for bad in [
            serde_json::json!({"aud": "someone-else", "iss": "https://video.example"}),
            serde_json::json!({"aud": "blacklist", "iss": "https://evil.example"}),
            serde_json::json!({"iss": "https://video.example"}),
        ] {
            assert!(strict.verify(&token(claims(bad.clone()))).is_err(), "{bad}");
        }
    }
}
