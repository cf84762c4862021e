//! The api's configuration: flags or environment variables (and `.env`).

use std::net::SocketAddr;

use common::config::{Connections, Secret};

use crate::client_ip::TrustedProxies;

#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    #[command(flatten)]
    pub conn: Connections,
    /// Address the HTTP server listens on.
    #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8000")]
    pub http_addr: SocketAddr,
    /// `development` or `production` (production refuses unsafe defaults).
    #[arg(long, env = "APP_ENV", default_value = "development")]
    pub app_env: String,
    /// HS256 key for admin access tokens; shared by every api instance. Required in production.
    #[arg(long, env = "ADMIN_JWT_SECRET", hide_env_values = true)]
    pub admin_jwt_secret: Option<Secret>,
    /// Bearer token for `/metrics` on the api's port. In production without it, `/metrics` is
    /// refused there (the other processes serve theirs on their own, internal ports).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// One-time secret for `POST /admin/seed` (header `X-Setup-Token`). In production without it,
    /// seeding over HTTP is off (use `api admin-create`).
    #[arg(long, env = "ADMIN_SETUP_TOKEN", hide_env_values = true)]
    pub admin_setup_token: Option<Secret>,
    /// Key the platforms' webhook signing secrets are derived from (at least 32 bytes); without
    /// it, they are derived from ADMIN_JWT_SECRET. Changing it changes every platform's secret.
    #[arg(long, env = "WEBHOOK_SIGNING_KEY", hide_env_values = true)]
    pub webhook_signing_key: Option<Secret>,
    /// Accept webhook URLs on loopback or private addresses, and plain http (local receivers in
    /// development; ignored in production).
    #[arg(long, env = "WEBHOOK_ALLOW_PRIVATE_TARGETS", default_value_t = false)]
    pub webhook_allow_private_targets: bool,
    /// Lifetime of an admin access token.
    #[arg(long, env = "ADMIN_TOKEN_TTL_SECONDS", default_value_t = 900)]
    pub admin_token_ttl_seconds: i64,
    /// Failed logins per IP per minute before 429.
    #[arg(long, env = "LOGIN_MAX_FAILURES_PER_MINUTE", default_value_t = 10)]
    pub login_max_failures_per_minute: usize,
    /// IPv6 clients are rate-limited, counted and banned by this prefix of their address (a
    /// subscriber usually holds a whole /64); IPv4 by address.
    #[arg(long, env = "IPV6_PREFIX_LEN", default_value_t = crate::client_ip::DEFAULT_V6_PREFIX,
          value_parser = clap::value_parser!(u8).range(32..=128))]
    pub ipv6_prefix_len: u8,
    /// Threads that check passwords (argon2id, 19 MiB each); 0: one per core. A burst beyond
    /// 16 waiting checks per thread gets 503 `busy` with `Retry-After: 1`.
    #[arg(long, env = "PASSWORD_HASH_THREADS", default_value_t = 0)]
    pub password_hash_threads: usize,
    /// Proxies whose `X-Forwarded-For` is believed (comma-separated CIDRs).
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,
    /// Run the outbox relay in this process (one instance is active at a time).
    #[arg(long, env = "RELAY_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub relay_enabled: bool,
    /// HS256 key of the host platform's session tokens.
    #[arg(long, env = "SESSION_JWT_SECRET", hide_env_values = true)]
    pub session_jwt_secret: Option<Secret>,
    /// Host tokens must carry this `aud` (when set).
    #[arg(long, env = "SESSION_JWT_AUDIENCE")]
    pub session_jwt_audience: Option<String>,
    /// Host tokens must carry this `iss` (when set).
    #[arg(long, env = "SESSION_JWT_ISSUER")]
    pub session_jwt_issuer: Option<String>,
    /// Longest lifetime of a host token (`exp` from now, or from `iat`).
    #[arg(
        long,
        env = "SESSION_JWT_MAX_LIFETIME_SECONDS",
        default_value_t = 86_400
    )]
    pub session_jwt_max_lifetime_seconds: i64,
    /// RS256 or EdDSA public key (PEM; `\n` escapes allowed) of the host platform's tokens.
    #[arg(long, env = "SESSION_JWT_PUBLIC_KEY")]
    pub session_jwt_public_key: Option<String>,
    /// Unique reporters that ban a user temporarily.
    #[arg(long, env = "AUTO_BAN_THRESHOLD", default_value_t = 4)]
    pub auto_ban_threshold: u32,
    /// Cloudflare Turnstile secret; without it public writes are not captcha-checked (refused
    /// in production).
    #[arg(long, env = "TURNSTILE_SECRET_KEY", hide_env_values = true)]
    pub turnstile_secret_key: Option<Secret>,
    /// Turnstile's siteverify endpoint.
    #[arg(long, env = "TURNSTILE_VERIFY_URL", default_value = crate::turnstile::CLOUDFLARE_SITEVERIFY)]
    pub turnstile_verify_url: String,
    /// Public writes (reports, uploads) per IP per minute, per api instance.
    #[arg(
        long,
        env = "RATE_LIMIT_PUBLIC_WRITES_PER_MINUTE",
        default_value_t = 20
    )]
    pub rate_limit_public_writes_per_minute: u32,
    /// Public reads (look-ups, blacklist) per IP per minute, per api instance.
    #[arg(
        long,
        env = "RATE_LIMIT_PUBLIC_READS_PER_MINUTE",
        default_value_t = 600
    )]
    pub rate_limit_public_reads_per_minute: u32,
    /// Seconds an answer of the public blacklist is served from memory (and may be cached by
    /// browsers and CDNs): a popular list costs one query per distinct search per interval, not one
    /// per view. 0 turns both off.
    #[arg(long, env = "BLACKLIST_CACHE_SECONDS", default_value_t = 5)]
    pub blacklist_cache_seconds: u64,
    /// Seed (`SA…`) of the account key that signs worker credentials; its public key is the
    /// `auth_callout.issuer` of the NATS config. Without it the api does not serve the callout.
    #[arg(long, env = "NATS_CALLOUT_ISSUER_SEED", hide_env_values = true)]
    pub nats_callout_issuer_seed: Option<Secret>,
    /// NATS system-account user, to disconnect revoked workers at once ($SYS.REQ.SERVER.*.KICK).
    #[arg(long, env = "NATS_SYS_USER")]
    pub nats_sys_user: Option<String>,
    #[arg(long, env = "NATS_SYS_PASSWORD", hide_env_values = true)]
    pub nats_sys_password: Option<Secret>,
    /// Lifetime of a worker's NATS credential; at expiry the server re-asks the callout, so a
    /// revoked worker is out within this time even if a disconnect message was lost.
    #[arg(long, env = "WORKER_CREDENTIAL_TTL_SECONDS", default_value_t = 300)]
    pub worker_credential_ttl_seconds: i64,
    #[command(flatten)]
    pub s3: crate::storage::S3Config,
    #[command(flatten)]
    pub email: pipeline::notifier::EmailConfig,
    #[command(flatten)]
    pub web: WebConfig,
    #[command(flatten)]
    pub weights: ReportWeights,
    /// The retention periods the janitor enforces, stated on `/privacy` and `/terms`.
    #[command(flatten)]
    pub retention: common::retention::RetentionConfig,
    /// Relay uploads through the api (same origin as the pages) instead of sending browsers
    /// straight to storage: for object stores without CORS (the local s3s-fs). Production with
    /// S3 or MinIO leaves it off and sets bucket CORS instead.
    #[arg(long, env = "UPLOADS_VIA_API", default_value_t = false, action = clap::ArgAction::Set)]
    pub uploads_via_api: bool,
    /// Largest recording accepted for upload, in bytes.
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// A request (headers aside) must be answered within this time, reading its body included;
    /// else 408. Status streams are not cut: their response starts at once.
    #[arg(long, env = "REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// The same for an upload relayed through the api (`UPLOADS_VIA_API`).
    #[arg(long, env = "UPLOAD_TIMEOUT_SECONDS", default_value_t = 300)]
    pub upload_timeout_seconds: u64,
    /// A request's headers must arrive within this time, or the connection is closed (also the
    /// idle time allowed between requests on a kept-alive connection).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_read_timeout_seconds: u64,
    /// Connections served at once; more clients wait in the listen backlog.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 4096)]
    pub http_max_connections: usize,
    /// Largest request body in bytes (uploads do not pass through the api).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
}

impl Config {
    pub fn is_production(&self) -> bool {
        self.app_env.eq_ignore_ascii_case("production")
    }

    /// What one client may cost the HTTP server.
    pub fn http_limits(&self) -> common::ops::HttpLimits {
        common::ops::HttpLimits {
            header_read_timeout: std::time::Duration::from_secs(
                self.header_read_timeout_seconds.max(1),
            ),
            max_connections: self.http_max_connections.max(1),
        }
    }
}

/// Settings of the web pages.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct WebConfig {
    /// Cloudflare Turnstile site key shown on public forms (the secret is TURNSTILE_SECRET_KEY).
    #[arg(long, env = "TURNSTILE_SITE_KEY", default_value = "")]
    pub turnstile_site_key: String,
    /// Host name that serves the public blacklist as its home page (a separate site).
    #[arg(long, env = "BLACKLIST_HOST")]
    pub blacklist_host: Option<String>,
    /// Origins of host platforms allowed to call the API from browsers (comma-separated).
    #[arg(
        long,
        env = "HOST_PLATFORM_ORIGINS",
        default_value = "",
        value_delimiter = ','
    )]
    pub host_platform_origins: Vec<String>,
}

/// How much a user report counts towards AUTO_BAN_THRESHOLD, from the reporter's standing.
/// Every factor is off by default: each report weighs 1, the seed's rule of 4 unique reporters.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct ReportWeights {
    /// Reporters of one ban cycle sharing an address (an IPv6 /IPV6_PREFIX_LEN network) count
    /// as one: the later reports weigh 0.
    #[arg(long, env = "REPORT_WEIGHT_ONE_PER_NETWORK", default_value_t = false, action = clap::ArgAction::Set)]
    pub one_per_network: bool,
    /// Multiplies a report's weight once per earlier target of the reporter that was vindicated
    /// (e.g. 0.5: one vindicated target halves it). 1 = off.
    #[arg(long, env = "REPORT_WEIGHT_VINDICATED_FACTOR", default_value_t = 1.0)]
    pub vindicated_factor: f64,
    /// The weight of a report from an account first seen less than
    /// REPORT_WEIGHT_NEW_ACCOUNT_HOURS ago (e.g. 0.5). 1 = off.
    #[arg(long, env = "REPORT_WEIGHT_NEW_ACCOUNT_FACTOR", default_value_t = 1.0)]
    pub new_account_factor: f64,
    #[arg(long, env = "REPORT_WEIGHT_NEW_ACCOUNT_HOURS", default_value_t = 24)]
    pub new_account_hours: i64,
}

impl Default for ReportWeights {
    fn default() -> Self {
        ReportWeights {
            one_per_network: false,
            vindicated_factor: 1.0,
            new_account_factor: 1.0,
            new_account_hours: 24,
        }
    }
}

impl ReportWeights {
    /// Refuses factors outside 0..=1 (or not numbers) and an age beyond a year.
    pub fn check(&self) -> anyhow::Result<()> {
        for (name, v) in [
            ("REPORT_WEIGHT_VINDICATED_FACTOR", self.vindicated_factor),
            ("REPORT_WEIGHT_NEW_ACCOUNT_FACTOR", self.new_account_factor),
        ] {
            if !(0.0..=1.0).contains(&v) {
                anyhow::bail!("{name}={v} must be a number from 0 to 1");
            }
        }
        if !(0..=8760).contains(&self.new_account_hours) {
            anyhow::bail!(
                "REPORT_WEIGHT_NEW_ACCOUNT_HOURS={} must be from 0 to 8760 (a year)",
                self.new_account_hours
            );
        }
        Ok(())
    }

    /// Whether any factor needs the reporter's history (read before filing).
    pub fn reads_standing(&self) -> bool {
        self.vindicated_factor < 1.0 || self.new_account_factor < 1.0
    }
}

/// Who may seed the admin account over HTTP.
#[derive(Clone)]
pub enum SeedPolicy {
    /// Anyone, first come (development and tests, no `ADMIN_SETUP_TOKEN`).
    Open,
    /// Only a request with `X-Setup-Token: <ADMIN_SETUP_TOKEN>`.
    Token(String),
    /// Nobody (production without `ADMIN_SETUP_TOKEN`): use `api admin-create`.
    Closed,
}

/// Who may read `/metrics` on the api's public port.
#[derive(Clone)]
pub enum MetricsAccess {
    /// Anyone (development, no `METRICS_TOKEN`).
    Open,
    /// `Authorization: Bearer <METRICS_TOKEN>`.
    Token(std::sync::Arc<str>),
    /// Nobody (production without `METRICS_TOKEN`).
    Closed,
}

impl Config {
    /// Who may seed the admin account: with `ADMIN_SETUP_TOKEN` its holder, else anyone in
    /// development and nobody in production.
    pub fn seed_policy(&self) -> SeedPolicy {
        match &self.admin_setup_token {
            Some(t) if !t.expose().is_empty() => SeedPolicy::Token(t.expose().to_owned()),
            _ if self.is_production() => SeedPolicy::Closed,
            _ => SeedPolicy::Open,
        }
    }

    /// Who may read `/metrics`: with `METRICS_TOKEN` its holder, else anyone in development and
    /// nobody in production.
    pub fn metrics_access(&self) -> MetricsAccess {
        match &self.metrics_token {
            Some(t) if !t.expose().is_empty() => {
                MetricsAccess::Token(std::sync::Arc::from(t.expose()))
            }
            _ if self.is_production() => MetricsAccess::Closed,
            _ => MetricsAccess::Open,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ReportWeights;

    #[test]
    fn report_weights_outside_their_range_are_refused() {
        assert!(ReportWeights::default().check().is_ok());
        let bad = [
            ReportWeights {
                vindicated_factor: f64::NAN,
                ..Default::default()
            },
            ReportWeights {
                new_account_factor: 1.5,
                ..Default::default()
            },
            ReportWeights {
                new_account_hours: i64::MAX,
                ..Default::default()
            },
        ];
        for w in bad {
            assert!(w.check().is_err(), "{w:?}");
        }
    }
}
