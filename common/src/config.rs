//! Configuration every process shares, read from flags and the environment (and `.env`, loaded
//! by `main` before parsing). Each process flattens [`Connections`] into its own config.

use std::fmt;
use std::str::FromStr;

use crate::nats::NatsAuth;

/// A string that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Postgres, NATS and logging settings.
#[derive(clap::Args, Clone, Debug)]
pub struct Connections {
    /// Postgres connection string (the source of truth).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/blacklist"
    )]
    pub database_url: String,
    /// Largest number of Postgres connections this process opens.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
    /// NATS server(s), comma-separated.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4333")]
    pub nats_url: String,
    /// NATS user of this process (see nats/README.md for the accounts).
    #[arg(long, env = "NATS_USER")]
    pub nats_user: Option<String>,
    /// Password of NATS_USER.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<Secret>,
    /// Replicas of every stream and bucket (3 in a 3-node cluster).
    #[arg(long, env = "JETSTREAM_REPLICAS", default_value_t = 1)]
    pub jetstream_replicas: usize,
    /// `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

impl Connections {
    /// A lazy Postgres pool of at most `max_connections`, with the migrations applied (retried
    /// for a while: Postgres may still be starting).
    pub async fn migrated_pool(&self, max_connections: u32) -> anyhow::Result<sqlx::PgPool> {
        let pool = crate::db::connect_lazy(&self.database_url, max_connections)?;
        crate::db::migrate_with_retry(&pool, 30).await?;
        Ok(pool)
    }

    pub fn nats_auth(&self) -> NatsAuth {
        NatsAuth {
            user: self.nats_user.clone(),
            password: self.nats_password.as_ref().map(|s| s.expose().to_owned()),
            token: None,
            inbox_prefix: None,
        }
    }
}

/// Loads `.env` (if present) into the environment; variables already set win.
pub fn load_dotenv() {
    let _ = dotenvy::dotenv();
}
