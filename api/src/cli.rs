//! The `api` binary's subcommands, one function each (`main` only parses and dispatches).

use anyhow::Context;
use common::config::Connections;

use crate::commands::{execute, CommandContext};
use crate::domain::{admin, worker};

/// `api serve`: HTTP (and the relay unless `RELAY_ENABLED=false`) until SIGTERM or Ctrl-C.
pub async fn serve(config: crate::Config) -> anyhow::Result<()> {
    common::telemetry::init(&config.conn.log_format);
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding {}", config.http_addr))?;
    crate::run(config, listener, common::shutdown::signal()).await
}

/// `api relay`: only the outbox relay.
pub async fn relay(conn: Connections) -> anyhow::Result<()> {
    common::telemetry::init(&conn.log_format);
    let pool = conn.migrated_pool(4).await?;
    let nats = common::nats::connect(&conn.nats_url, "relay", &conn.nats_auth()).await?;
    let js = async_nats::jetstream::new(nats.clone());
    crate::relay::Relay::new(pool, js)
        .run(common::shutdown::signal())
        .await;
    nats.flush().await.ok();
    Ok(())
}

/// `api setup`: migrations, then the JetStream streams, consumers and buckets.
pub async fn setup(conn: Connections) -> anyhow::Result<()> {
    common::telemetry::init(&conn.log_format);
    conn.migrated_pool(2).await.context("migrations")?;
    let nats = common::nats::connect(&conn.nats_url, "setup", &conn.nats_auth()).await?;
    let js = async_nats::jetstream::new(nats);
    events::topology::ensure(&js, conn.jetstream_replicas).await?;
    tracing::info!("database migrated; JetStream topology in place");
    Ok(())
}

/// `api migrate`: migrations only.
pub async fn migrate(conn: Connections) -> anyhow::Result<()> {
    common::telemetry::init(&conn.log_format);
    conn.migrated_pool(2).await?;
    tracing::info!("database migrated");
    Ok(())
}

/// `api gen-callout-key`: a new account key pair for the worker auth callout, as env lines.
pub fn gen_callout_key() -> anyhow::Result<()> {
    let key = nkeys::KeyPair::new_account();
    println!("NATS_CALLOUT_ISSUER={}", key.public_key());
    println!(
        "NATS_CALLOUT_ISSUER_SEED={}",
        key.seed().context("account seed")?
    );
    Ok(())
}

/// `api worker-register`: registers a worker (as `POST /admin/workers` does) and prints
/// `WORKER_TOKEN=…` once.
pub async fn worker_register(conn: Connections, name: String) -> anyhow::Result<()> {
    common::telemetry::init(&conn.log_format);
    let pool = conn.migrated_pool(2).await?;
    let workers = cqrs_es::CqrsFramework::new(
        crate::app::event_store::<worker::Worker>(&pool, events::worker::UPCASTERS),
        vec![],
        (),
    );
    let id = uuid::Uuid::new_v4();
    let token = worker::new_token(id);
    let cmd = worker::WorkerCommand::Register {
        name,
        token_hash: worker::hash_token(&token),
    };
    let ctx = CommandContext::new("system:cli", None);
    execute(&workers, &id.to_string(), cmd, &ctx)
        .await
        .context("registering the worker")?;
    println!("WORKER_TOKEN={token}");
    Ok(())
}

/// `api admin-create`: creates the admin account (as `POST /admin/seed` does) and prints
/// `ADMIN_USERNAME=…` and `ADMIN_PASSWORD=…` once.
pub async fn admin_create(conn: Connections) -> anyhow::Result<()> {
    common::telemetry::init(&conn.log_format);
    let pool = conn.migrated_pool(2).await?;
    let passwords = crate::passwords::Passwords::default();
    let store = || crate::app::event_store::<admin::Admin>(&pool, events::admin::UPCASTERS);
    let admins = cqrs_es::CqrsFramework::new(
        store(),
        vec![],
        admin::AdminServices {
            passwords: passwords.clone(),
        },
    );
    let ctx = CommandContext::new("system:cli", None);
    let password = crate::http::admin::seed_admin(&admins, &store(), &passwords, &ctx)
        .await
        .map_err(|e| anyhow::anyhow!("creating the admin account: {e}"))?;
    println!("ADMIN_USERNAME={}", crate::http::admin::SEED_USERNAME);
    println!("ADMIN_PASSWORD={password}");
    Ok(())
}
