//! Webhooks: each ban decision POSTed to the URL a host platform registered, signed, in order,
//! retried with exponential backoff for 24 hours, every attempt evented (`WebhookAttempted`).
//!
//! ```text
//!  EVENTS (decisions) ─ ban_feed::page from the platform's cursor ─► POST <url>
//!      Blacklist-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//!      2xx → next decision · else retry after 1 s, 2 s, 4 s … (at most 1 h) · 24 h → abandoned
//! ```
//!
//! One sender is active per database (an advisory lock, like the relay); it wakes on each
//! decision published on NATS, or every second. A platform's decisions go out one at a time,
//! oldest first, so the order per user holds; a failing platform never delays another.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;
use futures::StreamExt;
use hmac::{Hmac, Mac};
use postgres_es::PostgresCqrs;
use sha2::Sha256;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::ban_feed::{self, BanDecision};
use crate::commands::{execute, CommandContext};
use crate::domain::platform::{Platform, PlatformCommand};
use crate::error::ApiError;

/// How long a decision is retried before it is abandoned.
pub const RETRY_FOR: chrono::Duration = chrono::Duration::hours(24);
/// The longest pause between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// Advisory lock of the one active sender.
const SENDER_LOCK: i64 = 0x7765_6268_6f6f_6b73; // "webhooks"
/// Decisions read per platform and round.
const BATCH: usize = 20;
/// Platforms delivered to at once.
const PLATFORMS_AT_ONCE: usize = 16;

/// The signing secret of `platform`'s webhooks, derived from the server's key: nothing to store,
/// and a new `WEBHOOK_SIGNING_KEY` rotates every platform's secret.
pub fn signing_secret(key: &[u8], platform: Uuid) -> String {
    let mut label = b"blacklist-webhook:".to_vec();
    label.extend_from_slice(platform.as_bytes());
    format!("whsec_{}", hex(&hmac(key, &label)))
}

/// The `Blacklist-Signature` header of `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "t={timestamp},v1={}",
        hex(&hmac(secret.as_bytes(), &signed))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key) else {
        // HMAC takes a key of any length; were it refused, the signature would not verify.
        return Vec::new();
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Addresses a webhook may never reach: loopback, private, link-local, carrier-grade NAT,
/// unspecified, multicast, documentation and benchmarking ranges, and IPv4 inside IPv6.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
        }
    }
}

/// Where webhooks may go.
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    /// Plain `http://` is accepted (development only).
    pub allow_http: bool,
    /// Loopback and private addresses are accepted (`WEBHOOK_ALLOW_PRIVATE_TARGETS`, for local
    /// receivers; never in production).
    pub allow_private: bool,
}

/// Checks a URL a platform asks webhooks to go to: https (http only in development), a host,
/// no credentials, and every address it resolves to public. 422 otherwise.
pub async fn check_target(raw: &str, targets: Targets) -> Result<reqwest::Url, ApiError> {
    let bad = |why: &str| ApiError::unprocessable("invalid_webhook_url", why.to_owned());
    if raw.len() > 2048 {
        return Err(bad("the URL may have at most 2048 characters"));
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|_| bad("not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if targets.allow_http => {}
        _ => return Err(bad("webhook URLs must be https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("webhook URLs may not carry credentials"));
    }
    let host = url.host_str().ok_or_else(|| bad("the URL has no host"))?;
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::lookup_host((host.trim_matches(['[', ']']), port)),
    )
    .await
    .map_err(|_| bad("the host did not resolve in time"))?
    .map_err(|_| bad("the host does not resolve"))?
    .collect();
    if addrs.is_empty() {
        return Err(bad("the host does not resolve"));
    }
    if !targets.allow_private && addrs.iter().any(|a| is_private(a.ip())) {
        return Err(bad(
            "the host resolves to a private, loopback or reserved address",
        ));
    }
    Ok(url)
}

/// Resolves like the system, but never to a private address (unless allowed): a host that
/// resolved to a public address when it was registered cannot be pointed inside later.
struct PublicOnly {
    allow_private: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| allow_private || !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err("no public address".into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The sender: everything delivering needs.
pub struct Sender {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub platforms: Arc<PostgresCqrs<Platform>>,
    pub signing_key: Arc<[u8]>,
    pub targets: Targets,
}

/// Why one delivery did not land.
struct NotDelivered {
    status: Option<u16>,
    error: String,
}

impl Sender {
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        let http = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PublicOnly {
                allow_private: self.targets.allow_private,
            }))
            .user_agent("blacklist-webhooks/1")
            .build()
        {
            Ok(http) => http,
            Err(e) => {
                tracing::error!(error = %e, "no HTTP client: webhooks are off");
                return;
            }
        };
        common::shutdown::supervise("webhooks", shutdown, || async {
            self.lead(&http).await?;
            Ok(common::shutdown::Next::Again)
        })
        .await
    }

    /// Takes the lock and sends until an error; returns when another sender is active.
    async fn lead(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let mut lock = self.pool.acquire().await?.detach();
        let active: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
            .bind(SENDER_LOCK)
            .fetch_one(&mut lock)
            .await?;
        if !active {
            tokio::time::sleep(Duration::from_secs(2)).await;
            return Ok(());
        }
        let mut wake = self
            .nats
            .subscribe(format!(
                "{}.{}.*.*",
                events::subject::PREFIX,
                events::platform_user::AGGREGATE_TYPE
            ))
            .await?;
        loop {
            self.round(http).await?;
            let _ = tokio::time::timeout(Duration::from_secs(1), wake.next()).await;
        }
    }

    /// Brings every platform with a webhook as far as it goes now.
    async fn round(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO webhook_progress (platform_id, url, cursor)
             SELECT platform_id, webhook_url, coalesce(webhook_from, 0) FROM platforms
              WHERE webhook_url IS NOT NULL AND revoked_at IS NULL
             ON CONFLICT (platform_id) DO UPDATE SET url = EXCLUDED.url",
        )
        .execute(&self.pool)
        .await?;
        sqlx::query(
            "DELETE FROM webhook_progress w WHERE NOT EXISTS (
                SELECT 1 FROM platforms p WHERE p.platform_id = w.platform_id
                   AND p.webhook_url IS NOT NULL AND p.revoked_at IS NULL)",
        )
        .execute(&self.pool)
        .await?;
        // A platform whose cursor is at the end of the log has nothing to read.
        let end = ban_feed::end(&self.js)
            .await
            .map_err(|e| anyhow::anyhow!("reading where the log ends: {e}"))?;
        let due = sqlx::query(
            "SELECT platform_id, url, cursor, attempts, failing_since FROM webhook_progress
              WHERE next_attempt_at <= now() AND cursor < $1 ORDER BY platform_id",
        )
        .bind(end as i64)
        .fetch_all(&self.pool)
        .await?;
        // Platforms side by side: a slow or failing receiver delays no other platform.
        let failures: Vec<anyhow::Error> = futures::stream::iter(due)
            .map(|row| async move { self.advance(http, &row).await })
            .buffer_unordered(PLATFORMS_AT_ONCE)
            .filter_map(|outcome| std::future::ready(outcome.err()))
            .collect()
            .await;
        match failures.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Delivers one platform's next decisions, in order, until one fails.
    async fn advance(
        &self,
        http: &reqwest::Client,
        row: &sqlx::postgres::PgRow,
    ) -> anyhow::Result<()> {
        let platform: Uuid = row.get("platform_id");
        let url: String = row.get("url");
        let mut cursor = row.get::<i64, _>("cursor").max(0) as u64;
        let mut attempts = row.get::<i32, _>("attempts").max(0) as u32;
        let mut failing_since: Option<chrono::DateTime<Utc>> = row.get("failing_since");
        let (decisions, end) = ban_feed::page(&self.js, cursor, BATCH)
            .await
            .map_err(|e| anyhow::anyhow!("reading decisions: {e}"))?;
        let secret = signing_secret(&self.signing_key, platform);
        let mut delivered_all = true;
        for decision in &decisions {
            attempts += 1;
            let outcome = self.post(http, &url, &secret, decision).await;
            let now = Utc::now();
            let (label, status, error) = match &outcome {
                Ok(status) => ("delivered", Some(*status), None),
                Err(e) if failing_since.is_some_and(|t| now - t >= RETRY_FOR) => {
                    ("abandoned", e.status, Some(e.error.clone()))
                }
                Err(e) => ("failed", e.status, Some(e.error.clone())),
            };
            self.record(platform, decision, attempts, label, status, error)
                .await?;
            metrics::counter!("webhook_attempts_total", "outcome" => label).increment(1);
            if label == "failed" {
                let since = *failing_since.get_or_insert(now);
                let pause = backoff(attempts);
                sqlx::query(
                    "UPDATE webhook_progress SET attempts = $2, failing_since = $3,
                            next_attempt_at = now() + make_interval(secs => $4) WHERE platform_id = $1",
                )
                .bind(platform)
                .bind(attempts as i32)
                .bind(since)
                .bind(pause.as_secs_f64())
                .execute(&self.pool)
                .await?;
                delivered_all = false;
                break;
            }
            cursor = decision.cursor.parse().unwrap_or(cursor);
            attempts = 0;
            failing_since = None;
            self.save(platform, cursor).await?;
        }
        if delivered_all && end > cursor {
            self.save(platform, end).await?;
        }
        Ok(())
    }

    async fn save(&self, platform: Uuid, cursor: u64) -> anyhow::Result<()> {
        sqlx::query(
            "UPDATE webhook_progress SET cursor = $2, attempts = 0, failing_since = NULL,
                    next_attempt_at = now() WHERE platform_id = $1",
        )
        .bind(platform)
        .bind(cursor as i64)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn record(
        &self,
        platform: Uuid,
        decision: &BanDecision,
        attempt: u32,
        outcome: &str,
        status: Option<u16>,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        let cmd = PlatformCommand::RecordAttempt {
            cursor: decision.cursor.parse().unwrap_or_default(),
            user_id: decision.user_id.clone(),
            attempt,
            outcome: outcome.to_owned(),
            status,
            error: error.map(|e| e.chars().take(300).collect()),
        };
        let ctx = CommandContext::new("system:webhooks", None);
        execute(&self.platforms, &platform.to_string(), cmd, &ctx)
            .await
            .map_err(|e| anyhow::anyhow!("recording the attempt: {e}"))?;
        Ok(())
    }

    /// One POST; `Ok(status)` for a 2xx.
    async fn post(
        &self,
        http: &reqwest::Client,
        url: &str,
        secret: &str,
        decision: &BanDecision,
    ) -> Result<u16, NotDelivered> {
        let body = serde_json::to_vec(decision).map_err(|e| NotDelivered {
            status: None,
            error: e.to_string(),
        })?;
        // An address written as an IP is not resolved: check it here.
        if let Ok(parsed) = reqwest::Url::parse(url) {
            let literal = parsed
                .host_str()
                .and_then(|h| h.trim_matches(['[', ']']).parse::<IpAddr>().ok());
            if literal.is_some_and(|ip| !self.targets.allow_private && is_private(ip)) {
                return Err(NotDelivered {
                    status: None,
                    error: "the URL names a private address".into(),
                });
            }
        }
        let t = Utc::now().timestamp();
        let resp = http
            .post(url)
            .header("content-type", "application/json")
            .header("blacklist-signature", signature(secret, t, &body))
            .header("blacklist-event-id", &decision.cursor)
            .header("blacklist-event-kind", decision.kind)
            .body(body)
            .send()
            .await
            .map_err(|e| NotDelivered {
                status: None,
                error: e.without_url().to_string(),
            })?;
        let status = resp.status();
        if status.is_success() {
            Ok(status.as_u16())
        } else {
            Err(NotDelivered {
                status: Some(status.as_u16()),
                error: format!("the receiver answered {status}"),
            })
        }
    }
}

/// The pause after the `attempt`-th failure in a row: 1 s, 2 s, 4 s … at most an hour.
pub fn backoff(attempt: u32) -> Duration {
    let secs = 1u64 << attempt.saturating_sub(1).min(12);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_an_hour() {
        let pauses: Vec<u64> = (1..=14).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(&pauses[..4], &[1, 2, 4, 8]);
        assert_eq!(pauses[12], 3600);
        assert_eq!(pauses[13], 3600);
        // At most an hour apart, so 24 hours hold well over 24 attempts.
        let total: u64 = (1..=40).map(|a| backoff(a).as_secs()).sum();
        assert!(total > 24 * 3600);
    }

    #[test]
    fn a_signature_is_reproducible_by_the_receiver_and_bound_to_time_and_body() {
        let secret = signing_secret(b"server key", Uuid::nil());
        assert!(secret.starts_with("whsec_"));
        assert_ne!(secret, signing_secret(b"another key", Uuid::nil()));
        let sig = signature(&secret, 1_796_000_000, b"{\"a\":1}");
        let v1 = sig.strip_prefix("t=1796000000,v1=").unwrap();
        assert_eq!(v1, hex(&hmac(secret.as_bytes(), b"1796000000.{\"a\":1}")));
        assert_ne!(sig, signature(&secret, 1_796_000_001, b"{\"a\":1}"));
        assert_ne!(sig, signature(&secret, 1_796_000_000, b"{\"a\":2}"));
    }

    #[test]
    fn private_and_reserved_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.215.14", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_target_must_be_https_public_and_without_credentials() {
        let strict = Targets {
            allow_http: false,
            allow_private: false,
        };
        for bad in [
            "http://93.184.215.14/hook",
            "https://127.0.0.1/hook",
            "https://[::1]/hook",
            "https://user:pw@93.184.215.14/hook",
            "https://localhost/hook",
            "ftp://93.184.215.14/",
            "not a url",
        ] {
            assert!(check_target(bad, strict).await.is_err(), "{bad}");
        }
        assert!(check_target("https://93.184.215.14/hook", strict)
            .await
            .is_ok());
        let local = Targets {
            allow_http: true,
            allow_private: true,
        };
        assert!(check_target("http://127.0.0.1:9/hook", local).await.is_ok());
    }
}
