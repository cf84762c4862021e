//! `projector run | rebuild | replay`

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use common::config::Connections;

#[derive(Parser)]
#[command(
    name = "projector",
    version,
    about = "blacklist read models from the EVENTS stream"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Keep the read models up to date (durable consumer).
    Run {
        #[command(flatten)]
        conn: Connections,
        /// Address of /healthz, /readyz and /metrics.
        #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8001")]
        http_addr: SocketAddr,
    },
    /// Drop every read model and rebuild it from EVENTS.
    Rebuild {
        #[command(flatten)]
        conn: Connections,
    },
    /// Print the event history as NDJSON (read-only NATS credentials suffice).
    Replay {
        /// NATS server(s).
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4333")]
        nats_url: String,
        /// NATS user (the read-only `replay` user).
        #[arg(long, env = "REPLAY_NATS_USER", default_value = "replay")]
        nats_user: String,
        #[arg(long, env = "REPLAY_NATS_PASSWORD", hide_env_values = true)]
        nats_password: Option<common::config::Secret>,
        #[command(flatten)]
        filter: projector::replay::ReplayFilter,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::config::load_dotenv();
    match Cli::parse().command {
        Command::Run { conn, http_addr } => {
            common::telemetry::init(&conn.log_format);
            let pool = conn
                .migrated_pool(conn.database_max_connections)
                .await
                .context("migrations")?;
            let nats =
                common::nats::connect(&conn.nats_url, "projector", &conn.nats_auth()).await?;
            let js = async_nats::jetstream::new(nats.clone());
            let readiness = common::ops::Readiness {
                db: Some(pool.clone()),
                nats: Some(nats.clone()),
                checks: vec![],
            };
            let ops = common::ops::OpsServer::start(http_addr, readiness)
                .await
                .with_context(|| format!("binding {http_addr}"))?;
            tracing::info!(%http_addr, "projector running");
            projector::Projector::new(pool, js)
                .run(common::shutdown::signal())
                .await;
            ops.stop().await;
            Ok(())
        }
        Command::Rebuild { conn } => {
            common::telemetry::init(&conn.log_format);
            let pool = conn.migrated_pool(2).await?;
            let nats =
                common::nats::connect(&conn.nats_url, "projector-rebuild", &conn.nats_auth())
                    .await?;
            let js = async_nats::jetstream::new(nats);
            let n = projector::rebuild::rebuild(&pool, &js).await?;
            eprintln!("rebuilt read models from {n} events");
            Ok(())
        }
        Command::Replay {
            nats_url,
            nats_user,
            nats_password,
            filter,
        } => {
            common::telemetry::init("text");
            let auth = common::nats::NatsAuth {
                user: Some(nats_user),
                password: nats_password.map(|p| p.expose().to_owned()),
                token: None,
                inbox_prefix: None,
            };
            let nats = async_nats::ConnectOptions::new()
                .user_and_password(
                    auth.user.clone().unwrap_or_default(),
                    auth.password.clone().unwrap_or_default(),
                )
                .name("replay")
                .custom_inbox_prefix(events::topology::REPLAY_INBOX_PREFIX)
                .connect(&nats_url)
                .await
                .context("connecting to NATS")?;
            let js = async_nats::jetstream::new(nats);
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            projector::replay::replay(&js, &filter, &mut out).await?;
            Ok(())
        }
    }
}
