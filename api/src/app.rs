//! Wiring: state shared by handlers, the background tasks of an api process, and `run`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream;
use axum::Router;
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
    pub seed_policy: crate::http::admin::SeedPolicy,
    pub metrics_access: crate::http::MetricsAccess,
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
    pub web: Arc<crate::pages::WebConfig>,
    pub uploads_via_api: bool,
    /// Disconnects revoked workers.
    pub revocation: pipeline::worker_access::revocation::Revocation,
    pub tokens: Arc<AdminTokens>,
    pub revoked_tokens: Arc<KvSet<Uuid>>,
    pub passwords: Passwords,
    pub login_limiter: Arc<FailureLimiter>,
    pub trusted_proxies: TrustedProxies,
}

pub use write::event_store;

fn cqrs<A: cqrs_es::Aggregate>(
    pool: &PgPool,
    services: A::Services,
    upcasters: &'static [events::version::Upcaster],
) -> PostgresCqrs<A> {
    CqrsFramework::new(event_store(pool, upcasters), vec![], services)
}

/// A running api: its router and its background stages.
pub struct Api {
    pub state: AppState,
    pub router: Router,
    pub http_limits: common::ops::HttpLimits,
    stages: Stages,
}

/// The secrets and keys an api instance signs and verifies with, checked before anything starts.
struct Keys {
    admin_jwt: Vec<u8>,
    sessions: SessionVerifier,
    turnstile: Turnstile,
    callout_issuer: Option<Arc<nkeys::KeyPair>>,
}

impl Keys {
    /// Refuses a configuration that production must not run with; warns about dev shortcuts.
    fn check(config: &Config) -> anyhow::Result<Keys> {
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
struct Links {
    pool: PgPool,
    nats: async_nats::Client,
    nats_sys: Option<async_nats::Client>,
}

impl Links {
    /// Connects lazily where it can (dependencies may be down) and migrates the database.
    async fn open(config: &Config) -> anyhow::Result<Links> {
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

impl Api {
    /// Checks the configuration, connects, migrates, ensures the JetStream topology and starts
    /// the background stages.
    pub async fn start(config: &Config, passwords: Passwords) -> anyhow::Result<Api> {
        let keys = Keys::check(config)?;
        let links = Links::open(config).await?;
        let stages = Stages::new();
        let js = jetstream::new(links.nats.clone());
        let replicas = config.conn.jetstream_replicas;
        stages.spawn(|stop| ensure_topology(js.clone(), replicas, stop));
        let issuer = keys.callout_issuer.clone();
        let state = AppState::new(config, keys, links, passwords);
        state.spawn_mirrors(&stages, config.relay_enabled);
        spawn_pipeline(&state, config, issuer, &stages)?;
        let router = crate::http::router(
            state.clone(),
            state.readiness(),
            crate::http::Limits {
                max_body_bytes: config.max_body_bytes,
                request_timeout: Duration::from_secs(config.request_timeout_seconds.max(1)),
                upload_timeout: Duration::from_secs(config.upload_timeout_seconds.max(1)),
            },
        );
        Ok(Api {
            http_limits: config.http_limits(),
            state,
            router,
            stages,
        })
    }

    /// Stops the background stages (the relay finishes its current batch) and waits for them.
    pub async fn shutdown(self) {
        if !self.stages.stop(Duration::from_secs(10)).await {
            tracing::warn!("some background stages did not stop in time");
        }
        let _ = self.state.nats.flush().await;
    }
}

impl AppState {
    fn new(config: &Config, keys: Keys, links: Links, passwords: Passwords) -> AppState {
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
            metrics_access: match &config.metrics_token {
                Some(t) if !t.expose().is_empty() => {
                    crate::http::MetricsAccess::Token(Arc::from(t.expose()))
                }
                _ if config.is_production() => crate::http::MetricsAccess::Closed,
                _ => crate::http::MetricsAccess::Open,
            },
            storage_origin: reqwest::Url::parse(&config.s3.s3_endpoint_url)
                .ok()
                .map(|u| u.origin().ascii_serialization())
                .filter(|o| o != "null"),
            seed_policy: match &config.admin_setup_token {
                Some(t) if !t.expose().is_empty() => {
                    crate::http::admin::SeedPolicy::Token(t.expose().to_owned())
                }
                _ if config.is_production() => crate::http::admin::SeedPolicy::Closed,
                _ => crate::http::admin::SeedPolicy::Open,
            },
            sessions: Arc::new(cqrs(&pool, (), events::admin::SESSION_UPCASTERS)),
            platform_users: Arc::new(cqrs(
                &pool,
                PlatformUserServices {
                    auto_ban_threshold: config.auto_ban_threshold.max(1),
                    v6_prefix: config.ipv6_prefix_len,
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
            voice_tasks: Arc::new(cqrs(&pool, (), events::voice_task::UPCASTERS)),
            voice_task_store: Arc::new(event_store(&pool, events::voice_task::UPCASTERS)),
            session_store: Arc::new(event_store(&pool, events::admin::SESSION_UPCASTERS)),
            known_sessions: Arc::default(),
            storage: storage.clone(),
            max_upload_bytes: config.max_upload_bytes,
            email_notify_after_seconds: config.email.email_notify_after_seconds,
            web: Arc::new(config.web.clone()),
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
    fn spawn_mirrors(&self, stages: &Stages, relay: bool) {
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
    fn readiness(&self) -> Readiness {
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

/// Starts the voice pipeline's stages (the durable consumers share the work between
/// instances) and, with an issuer key, the workers' auth callout.
fn spawn_pipeline(
    s: &AppState,
    config: &Config,
    issuer: Option<Arc<nkeys::KeyPair>>,
    stages: &Stages,
) -> anyhow::Result<()> {
    use pipeline::worker_access::{callout::Callout, heartbeats};
    if let Some(issuer) = issuer {
        let callout = Callout {
            workers: s.worker_store.clone(),
            pool: s.pool.clone(),
            issuer,
            ttl: config.worker_credential_ttl_seconds,
        };
        let nats = s.nats.clone();
        stages.spawn(|stop| callout.run(nats, stop));
    }
    let dispatch = pipeline::dispatch::DispatchStage {
        dispatcher: pipeline::dispatch::Dispatcher {
            store: s.voice_task_store.clone(),
            storage: s.storage.clone(),
            js: s.js.clone(),
        },
        phones: s.phones.clone(),
    };
    stages.spawn(|stop| dispatch.run(stop));
    let intake = pipeline::intake::Intake {
        tasks: s.voice_tasks.clone(),
    };
    let js = s.js.clone();
    stages.spawn(|stop| intake.run(js, stop));
    match pipeline::notifier::Notifier::new(s.pool.clone(), config.email.clone())? {
        Some(notifier) => {
            let js = s.js.clone();
            stages.spawn(|stop| notifier.run(js, stop));
        }
        None => tracing::warn!("no RESEND_API_KEY: verdict emails are off"),
    }
    let (pool, nats) = (s.pool.clone(), s.nats.clone());
    stages.spawn(|stop| heartbeats::run(pool, nats, stop));
    Ok(())
}

/// Creates streams, consumers and buckets, retrying while NATS is unreachable.
async fn ensure_topology(
    js: jetstream::Context,
    replicas: usize,
    shutdown: impl Future<Output = ()>,
) {
    common::shutdown::supervise("JetStream topology", shutdown, || async {
        topology::ensure(&js, replicas).await?;
        Ok(common::shutdown::Next::Stop)
    })
    .await
}

/// Serves the api on `listener` until `shutdown`, then drains background work.
pub async fn run(
    config: Config,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let api = Api::start(
        &config,
        Passwords::with_threads(config.password_hash_threads),
    )
    .await?;
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    common::ops::serve(listener, api.router.clone(), api.http_limits, shutdown).await?;
    api.shutdown().await;
    Ok(())
}
