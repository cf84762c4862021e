//! `api serve | relay | setup | migrate | gen-callout-key | admin-create | worker-register`

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "api",
    version,
    about = "blacklist HTTP API, command handling and outbox relay"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (and run the relay unless RELAY_ENABLED=false).
    Serve(Box<api::Config>),
    /// Run only the outbox relay.
    Relay(common::config::Connections),
    /// Apply database migrations and create the JetStream streams, consumers and buckets.
    Setup(common::config::Connections),
    /// Apply database migrations only.
    Migrate(common::config::Connections),
    /// Print a new account key pair for the worker auth callout, as env lines:
    /// NATS_CALLOUT_ISSUER (public, for nats-server) and NATS_CALLOUT_ISSUER_SEED (for the api).
    GenCalloutKey,
    /// Create the admin account (as POST /admin/seed does, which production keeps closed without
    /// ADMIN_SETUP_TOKEN) and print `ADMIN_USERNAME=…` and `ADMIN_PASSWORD=…` once.
    AdminCreate(common::config::Connections),
    /// Register a worker (as POST /admin/workers does) and print `WORKER_TOKEN=…` once.
    WorkerRegister {
        #[command(flatten)]
        conn: common::config::Connections,
        /// The worker's name, shown in the admin list.
        #[arg(long, default_value = "local")]
        name: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::config::load_dotenv();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(config) => {
            common::telemetry::init(&config.conn.log_format);
            let listener = tokio::net::TcpListener::bind(config.http_addr)
                .await
                .with_context(|| format!("binding {}", config.http_addr))?;
            api::run(*config, listener, common::shutdown::signal()).await
        }
        Command::Relay(conn) => {
            common::telemetry::init(&conn.log_format);
            let pool = conn.migrated_pool(4).await?;
            let nats = common::nats::connect(&conn.nats_url, "relay", &conn.nats_auth()).await?;
            let js = async_nats::jetstream::new(nats.clone());
            api::relay::Relay::new(pool, js)
                .run(common::shutdown::signal())
                .await;
            nats.flush().await.ok();
            Ok(())
        }
        Command::Setup(conn) => {
            common::telemetry::init(&conn.log_format);
            conn.migrated_pool(2).await.context("migrations")?;
            let nats = common::nats::connect(&conn.nats_url, "setup", &conn.nats_auth()).await?;
            let js = async_nats::jetstream::new(nats);
            events::topology::ensure(&js, conn.jetstream_replicas).await?;
            tracing::info!("database migrated; JetStream topology in place");
            Ok(())
        }
        Command::WorkerRegister { conn, name } => {
            common::telemetry::init(&conn.log_format);
            let pool = conn.migrated_pool(2).await?;
            let workers = cqrs_es::CqrsFramework::new(
                api::app::event_store::<api::domain::worker::Worker>(
                    &pool,
                    events::worker::UPCASTERS,
                ),
                vec![],
                (),
            );
            let id = uuid::Uuid::new_v4();
            let token = api::domain::worker::new_token(id);
            let cmd = api::domain::worker::WorkerCommand::Register {
                name,
                token_hash: api::domain::worker::hash_token(&token),
            };
            let ctx = api::commands::CommandContext::new("system:cli", None);
            api::commands::execute(&workers, &id.to_string(), cmd, &ctx)
                .await
                .map_err(|e| anyhow::anyhow!("registering the worker: {e}"))?;
            println!("WORKER_TOKEN={token}");
            Ok(())
        }
        Command::AdminCreate(conn) => {
            common::telemetry::init(&conn.log_format);
            let pool = conn.migrated_pool(2).await?;
            let passwords = api::passwords::Passwords::default();
            let admins = cqrs_es::CqrsFramework::new(
                api::app::event_store::<api::domain::admin::Admin>(&pool, events::admin::UPCASTERS),
                vec![],
                api::domain::admin::AdminServices {
                    passwords: passwords.clone(),
                },
            );
            let store =
                api::app::event_store::<api::domain::admin::Admin>(&pool, events::admin::UPCASTERS);
            let ctx = api::commands::CommandContext::new("system:cli", None);
            let password = api::http::admin::seed_admin(&admins, &store, &passwords, &ctx)
                .await
                .map_err(|e| anyhow::anyhow!("creating the admin account: {e}"))?;
            println!("ADMIN_USERNAME={}", api::http::admin::SEED_USERNAME);
            println!("ADMIN_PASSWORD={password}");
            Ok(())
        }
        Command::GenCalloutKey => {
            let key = nkeys::KeyPair::new_account();
            println!("NATS_CALLOUT_ISSUER={}", key.public_key());
            println!(
                "NATS_CALLOUT_ISSUER_SEED={}",
                key.seed().context("account seed")?
            );
            Ok(())
        }
        Command::Migrate(conn) => {
            common::telemetry::init(&conn.log_format);
            conn.migrated_pool(2).await?;
            tracing::info!("database migrated");
            Ok(())
        }
    }
}
