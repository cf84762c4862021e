//! The state handlers share, and how it is built from the configuration (keys checked,
//! connections opened, mirrors started).

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use axum::extract::FromRef;
use common::ops::Readiness;
use common::shutdown::Stages;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::CqrsFramework;
use events::topology;
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::AdminTokens;
use crate::client_ip::BannedIp;
use crate::client_ip::TrustedProxies;
use crate::config::Config;
use crate::domain::admin::{Admin, AdminServices};
use crate::domain::phone_number::PhoneNumber;
use crate::domain::platform::Platform;
use crate::domain::platform_user::{PlatformUser, PlatformUserServices};
use crate::domain::session::Session;
use crate::domain::voice_task::VoiceTask;
use crate::domain::worker::Worker;
use crate::evasion::EvasionCounter;
use crate::kv_set::KvSet;
use crate::passwords::Passwords;
use crate::ratelimit::FailureLimiter;
use crate::ratelimit::RateLimiter;
use crate::relay::Relay;
use crate::session_auth::{ObservedSessions, SessionVerifier};
use crate::storage::Storage;
use crate::turnstile::Turnstile;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub js: jetstream::Context,
    pub admins: Arc<PostgresCqrs<Admin>>,
    /// Read access to admin aggregates, for password checks that write nothing.
    pub admin_store: Arc<PersistedEventStore<PostgresEventRepository, Admin>>,
    pub seed_policy: crate::config::SeedPolicy,
    pub metrics_access: crate::config::MetricsAccess,
    /// Origin of the object store browsers upload to and play from (for the pages' CSP).
    pub storage_origin: Option<String>,
    pub sessions: Arc<PostgresCqrs<Session>>,
    pub platform_users: Arc<PostgresCqrs<PlatformUser>>,
    /// Read access to platform users (is the reporter banned?).
    pub platform_user_store: Arc<PersistedEventStore<PostgresEventRepository, PlatformUser>>,
    pub sessions_verifier: Arc<SessionVerifier>,
    pub observed: Arc<ObservedSessions>,
    /// Mirror of the `ip-bans` bucket: the IP-ban check is a hash-set probe.
    pub banned_ips: Arc<KvSet<BannedIp>>,
    pub evasion: Arc<EvasionCounter>,
    pub phones: Arc<PostgresCqrs<PhoneNumber>>,
    pub turnstile: Arc<Turnstile>,
    pub public_writes: Arc<RateLimiter>,
    pub public_reads: Arc<RateLimiter>,
    pub workers: Arc<PostgresCqrs<Worker>>,
    /// Host platforms (admin registration) and read access to their keys.
    pub platforms: Arc<PostgresCqrs<Platform>>,
    pub platform_store: Arc<PersistedEventStore<PostgresEventRepository, Platform>>,
    /// The key webhook signing secrets derive from, and where webhooks may go.
    pub webhook_key: Arc<[u8]>,
    pub webhook_targets: crate::webhooks::Targets,
    /// Ban streams open on this instance, per platform.
    pub ban_streams: Arc<crate::ban_feed::OpenStreams>,
    /// Recent answers of the public blacklist.
    pub blacklist_cache: Arc<crate::queries::BlacklistCache>,
    /// Read access to workers (the auth callout checks tokens against it).
    pub worker_store: Arc<PersistedEventStore<PostgresEventRepository, Worker>>,
    pub voice_tasks: Arc<PostgresCqrs<VoiceTask>>,
    pub voice_task_store: Arc<PersistedEventStore<PostgresEventRepository, VoiceTask>>,
    /// Admin sessions as their events say (a token must name an open one).
    pub session_store: Arc<PersistedEventStore<PostgresEventRepository, Session>>,
    pub known_sessions: Arc<crate::auth::KnownSessions>,
    pub storage: Storage,
    pub max_upload_bytes: u64,
    /// Waits longer than this email the verdict (when an address was given).
    pub email_notify_after_seconds: i64,
    pub web: Arc<crate::config::WebConfig>,
    /// Where the web pages are public (PUBLIC_BASE_URL), for links that leave the site.
    pub public_base_url: String,
    /// Reports (summed weights) that ban a user temporarily, as `/terms` states it.
    pub auto_ban_threshold: u32,
    /// The retention periods (for `/privacy` and `/terms`).
    pub retention: common::retention::RetentionConfig,
    /// How user reports are weighted (all off by default).
    pub weights: crate::config::ReportWeights,
    pub uploads_via_api: bool,
    /// Disconnects revoked workers.
    pub revocation: pipeline::worker_access::revocation::Revocation,
    pub tokens: Arc<AdminTokens>,
    pub revoked_tokens: Arc<KvSet<Uuid>>,
    pub passwords: Passwords,
    pub login_limiter: Arc<FailureLimiter>,
    pub trusted_proxies: TrustedProxies,
}

impl FromRef<AppState> for crate::auth::AdminAuth {
    fn from_ref(s: &AppState) -> Self {
        crate::auth::AdminAuth {
            tokens: s.tokens.clone(),
            known_sessions: s.known_sessions.clone(),
            session_store: s.session_store.clone(),
        }
    }
}

impl FromRef<AppState> for crate::session_auth::SessionAuth {
    fn from_ref(s: &AppState) -> Self {
        crate::session_auth::SessionAuth {
            sessions_verifier: s.sessions_verifier.clone(),
            observed: s.observed.clone(),
            platform_users: s.platform_users.clone(),
        }
    }
}

impl FromRef<AppState> for crate::platform_auth::PlatformAuth {
    fn from_ref(s: &AppState) -> Self {
        crate::platform_auth::PlatformAuth {
            store: s.platform_store.clone(),
        }
    }
}

impl FromRef<AppState> for TrustedProxies {
    fn from_ref(s: &AppState) -> Self {
        s.trusted_proxies.clone()
    }
}

pub use write::event_store;

fn cqrs<A: cqrs_es::Aggregate>(
    pool: &PgPool,
    services: A::Services,
    upcasters: &'static [events::version::Upcaster],
) -> PostgresCqrs<A> {
    CqrsFramework::new(event_store(pool, upcasters), vec![], services)
}

/// The secrets and keys an api instance signs and verifies with, checked before anything starts.
pub(crate) struct Keys {
    admin_jwt: Vec<u8>,
    sessions: SessionVerifier,
    turnstile: Turnstile,
    pub(crate) callout_issuer: Option<Arc<nkeys::KeyPair>>,
}

impl Keys {
    /// Refuses a configuration that production must not run with; warns about dev shortcuts.
    pub(crate) fn check(config: &Config) -> anyhow::Result<Keys> {
        config.retention.check()?;
        config.weights.check()?;
        let production = config.is_production();
        let admin_jwt = match &config.admin_jwt_secret {
            Some(s) if s.expose().len() >= 32 => s.expose().as_bytes().to_vec(),
            Some(_) => anyhow::bail!("ADMIN_JWT_SECRET must be at least 32 characters"),
            None if production => {
                anyhow::bail!("ADMIN_JWT_SECRET is required when APP_ENV=production")
            }
            None => {
                tracing::warn!("ADMIN_JWT_SECRET is not set: using a random key; tokens will not work across instances or restarts");
                crate::passwords::generate(48).into_bytes()
            }
        };
        if let Some(secret) = &config.session_jwt_secret {
            let len = secret.expose().len();
            if len > 0 && len < crate::session_auth::MIN_SECRET_BYTES {
                if production {
                    anyhow::bail!(
                        "SESSION_JWT_SECRET must be at least {} bytes when APP_ENV=production",
                        crate::session_auth::MIN_SECRET_BYTES
                    );
                }
                tracing::warn!(
                    len,
                    "SESSION_JWT_SECRET is short: use at least 32 random bytes"
                );
            }
        }
        if production && config.webhook_allow_private_targets {
            tracing::warn!("WEBHOOK_ALLOW_PRIVATE_TARGETS is ignored when APP_ENV=production");
        }
        if let Some(k) = &config.webhook_signing_key {
            if !k.expose().is_empty() && k.expose().len() < 32 {
                anyhow::bail!("WEBHOOK_SIGNING_KEY must be at least 32 characters");
            }
        }
        // A revoked token must stay in `admin-revoked` for as long as it could be used.
        let revoked_for = topology::admin_revoked_bucket(1).max_age.as_secs() as i64;
        if config.admin_token_ttl_seconds > revoked_for || config.admin_token_ttl_seconds < 1 {
            anyhow::bail!(
                "ADMIN_TOKEN_TTL_SECONDS must be between 1 and {revoked_for} (how long admin-revoked keeps a revocation)"
            );
        }
        let sessions = SessionVerifier::new(
            config.session_jwt_secret.as_ref().map(|s| s.expose()),
            config.session_jwt_public_key.as_deref(),
            crate::session_auth::SessionRules {
                audience: config
                    .session_jwt_audience
                    .clone()
                    .filter(|s| !s.is_empty()),
                issuer: config.session_jwt_issuer.clone().filter(|s| !s.is_empty()),
                max_lifetime_seconds: config.session_jwt_max_lifetime_seconds,
            },
        )?;
        if !sessions.is_configured() {
            if production {
                anyhow::bail!("SESSION_JWT_SECRET or SESSION_JWT_PUBLIC_KEY is required when APP_ENV=production");
            }
            tracing::warn!("no SESSION_JWT_SECRET / SESSION_JWT_PUBLIC_KEY: platform-user endpoints refuse every token");
        }
        let turnstile = Turnstile::new(
            config
                .turnstile_secret_key
                .as_ref()
                .map(|s| s.expose().to_owned()),
            config.turnstile_verify_url.clone(),
        );
        if !turnstile.is_enabled() {
            if production {
                anyhow::bail!("TURNSTILE_SECRET_KEY is required when APP_ENV=production");
            }
            tracing::warn!(
                "TURNSTILE_SECRET_KEY is not set: public writes are not captcha-checked"
            );
        }
        let callout_issuer = match &config.nats_callout_issuer_seed {
            Some(seed) => Some(Arc::new(
                nkeys::KeyPair::from_seed(seed.expose())
                    .context("NATS_CALLOUT_ISSUER_SEED is not an nkey seed")?,
            )),
            None => {
                tracing::warn!(
                    "no NATS_CALLOUT_ISSUER_SEED: this instance does not authorize workers"
                );
                None
            }
        };
        Ok(Keys {
            admin_jwt,
            sessions,
            turnstile,
            callout_issuer,
        })
    }
}

/// The api's connections: Postgres (migrated), NATS, and optionally NATS's system account.
pub(crate) struct Links {
    pub(crate) pool: PgPool,
    pub(crate) nats: async_nats::Client,
    pub(crate) nats_sys: Option<async_nats::Client>,
}

impl Links {
    /// Connects lazily where it can (dependencies may be down) and migrates the database.
    pub(crate) async fn open(config: &Config) -> anyhow::Result<Links> {
        let pool = config
            .conn
            .migrated_pool(config.conn.database_max_connections)
            .await
            .context("migrations")?;
        let nats = common::nats::connect(&config.conn.nats_url, "api", &config.conn.nats_auth())
            .await
            .context("NATS_URL")?;
        let nats_sys = match (&config.nats_sys_user, &config.nats_sys_password) {
            (Some(user), Some(password)) => {
                let auth = common::nats::NatsAuth {
                    user: Some(user.clone()),
                    password: Some(password.expose().to_owned()),
                    token: None,
                    inbox_prefix: None,
                };
                Some(
                    common::nats::connect(&config.conn.nats_url, "api-sys", &auth)
                        .await
                        .context("NATS_SYS_USER")?,
                )
            }
            _ => {
                tracing::warn!("no NATS_SYS_USER: revoked workers are cut off when their credential expires, not at once");
                None
            }
        };
        Ok(Links {
            pool,
            nats,
            nats_sys,
        })
    }
}

impl AppState {
    pub(crate) fn new(config: &Config, keys: Keys, links: Links, passwords: Passwords) -> AppState {
        let Links {
            pool,
            nats,
            nats_sys,
        } = links;
        let js = jetstream::new(nats.clone());
        let revoked_tokens = KvSet::<Uuid>::new(topology::ADMIN_REVOKED_BUCKET);
        // Bans hold exact addresses; a look-up matches an IPv6 client's whole /64 (or
        // IPV6_PREFIX_LEN), an IPv4 client's address.
        let v6_prefix = config.ipv6_prefix_len;
        let banned_ips = KvSet::<BannedIp>::grouped(topology::IP_BANS_BUCKET, move |b| {
            BannedIp(crate::client_ip::network(b.0, v6_prefix))
        });
        let evasion = Arc::new(EvasionCounter::default());
        let storage = Storage::new(&config.s3);
        let secret = keys.admin_jwt;
        let sessions_verifier = keys.sessions;
        let turnstile = keys.turnstile;
        AppState {
            admins: Arc::new(cqrs(
                &pool,
                AdminServices {
                    passwords: passwords.clone(),
                },
                events::admin::UPCASTERS,
            )),
            admin_store: Arc::new(event_store(&pool, events::admin::UPCASTERS)),
            metrics_access: config.metrics_access(),
            storage_origin: reqwest::Url::parse(&config.s3.s3_endpoint_url)
                .ok()
                .map(|u| u.origin().ascii_serialization())
                .filter(|o| o != "null"),
            seed_policy: config.seed_policy(),
            sessions: Arc::new(cqrs(&pool, (), events::admin::SESSION_UPCASTERS)),
            platform_users: Arc::new(cqrs(
                &pool,
                PlatformUserServices {
                    auto_ban_threshold: config.auto_ban_threshold.max(1),
                    v6_prefix: config.ipv6_prefix_len,
                    one_vote_per_network: config.weights.one_per_network,
                },
                events::platform_user::UPCASTERS,
            )),
            platform_user_store: Arc::new(event_store(&pool, events::platform_user::UPCASTERS)),
            sessions_verifier: Arc::new(sessions_verifier),
            observed: Arc::new(ObservedSessions::new(config.ipv6_prefix_len)),
            banned_ips,
            evasion,
            phones: Arc::new(cqrs(&pool, (), events::phone_number::UPCASTERS)),
            turnstile: Arc::new(turnstile),
            public_writes: Arc::new(
                RateLimiter::per_minute(config.rate_limit_public_writes_per_minute)
                    .with_v6_prefix(config.ipv6_prefix_len),
            ),
            public_reads: Arc::new(
                RateLimiter::per_minute(config.rate_limit_public_reads_per_minute)
                    .with_v6_prefix(config.ipv6_prefix_len),
            ),
            workers: Arc::new(cqrs(&pool, (), events::worker::UPCASTERS)),
            platforms: Arc::new(cqrs(&pool, (), events::platform::UPCASTERS)),
            platform_store: Arc::new(event_store(&pool, events::platform::UPCASTERS)),
            webhook_key: match &config.webhook_signing_key {
                Some(k) if !k.expose().is_empty() => Arc::from(k.expose().as_bytes()),
                _ => Arc::from(&secret[..]),
            },
            ban_streams: Arc::default(),
            blacklist_cache: Arc::new(crate::queries::BlacklistCache::new(Duration::from_secs(
                config.blacklist_cache_seconds,
            ))),
            webhook_targets: crate::webhooks::Targets {
                allow_http: !config.is_production(),
                allow_private: config.webhook_allow_private_targets && !config.is_production(),
            },
            voice_tasks: Arc::new(cqrs(&pool, (), events::voice_task::UPCASTERS)),
            voice_task_store: Arc::new(event_store(&pool, events::voice_task::UPCASTERS)),
            session_store: Arc::new(event_store(&pool, events::admin::SESSION_UPCASTERS)),
            known_sessions: Arc::default(),
            storage: storage.clone(),
            max_upload_bytes: config.max_upload_bytes,
            email_notify_after_seconds: config.email.email_notify_after_seconds,
            web: Arc::new(config.web.clone()),
            weights: config.weights,
            retention: config.retention,
            auto_ban_threshold: config.auto_ban_threshold.max(1),
            public_base_url: config
                .email
                .public_base_url
                .trim_end_matches('/')
                .to_owned(),
            uploads_via_api: config.uploads_via_api,
            worker_store: Arc::new(event_store(&pool, events::worker::UPCASTERS)),
            revocation: pipeline::worker_access::revocation::Revocation {
                pool: pool.clone(),
                nats_sys,
            },
            tokens: Arc::new(AdminTokens::new(
                &secret,
                config.admin_token_ttl_seconds,
                revoked_tokens.clone(),
            )),
            revoked_tokens,
            passwords,
            login_limiter: Arc::new(
                FailureLimiter::new(
                    config.login_max_failures_per_minute,
                    Duration::from_secs(60),
                )
                .with_v6_prefix(config.ipv6_prefix_len),
            ),
            trusted_proxies: config.trusted_proxies.clone(),
            pool,
            nats,
            js,
        }
    }

    /// Starts the mirrors every instance keeps (revoked tokens, IP bans, evasion counts) and,
    /// when enabled, the outbox relay.
    pub(crate) fn spawn_mirrors(&self, stages: &Stages, relay: bool) {
        let (js, pool) = (self.js.clone(), self.pool.clone());
        let revoked = self.revoked_tokens.clone();
        stages.spawn(|stop| revoked.run(js.clone(), stop));
        let banned = self.banned_ips.clone();
        stages.spawn(|stop| banned.run(js.clone(), stop));
        let evasion = self.evasion.clone();
        stages.spawn(|stop| evasion.run(pool.clone(), stop));
        if relay {
            stages.spawn(|stop| Relay::new(pool, js).run(stop));
        }
    }

    /// Ready when Postgres and NATS answer and both mirrors have caught up.
    pub(crate) fn readiness(&self) -> Readiness {
        let revoked = self.revoked_tokens.clone();
        let banned = self.banned_ips.clone();
        Readiness {
            db: Some(self.pool.clone()),
            nats: Some(self.nats.clone()),
            checks: vec![
                ("admin-revoked", Arc::new(move || revoked.is_synced())),
                ("ip-bans", Arc::new(move || banned.is_synced())),
            ],
        }
    }
}
