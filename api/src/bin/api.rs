//! `api serve | relay | setup | migrate | gen-callout-key | admin-create | worker-register`

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
    match Cli::parse().command {
        Command::Serve(config) => api::cli::serve(*config).await,
        Command::Relay(conn) => api::cli::relay(conn).await,
        Command::Setup(conn) => api::cli::setup(conn).await,
        Command::Migrate(conn) => api::cli::migrate(conn).await,
        Command::GenCalloutKey => api::cli::gen_callout_key(),
        Command::AdminCreate(conn) => api::cli::admin_create(conn).await,
        Command::WorkerRegister { conn, name } => api::cli::worker_register(conn, name).await,
    }
}
