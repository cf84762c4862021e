//! `janitor run | republish`

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use common::config::Connections;

#[derive(Parser)]
#[command(
    name = "janitor",
    version,
    about = "blacklist background care: outbox watchdog, re-publishing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the watchdog loops.
    Run {
        #[command(flatten)]
        conn: Connections,
        /// Address of /healthz, /readyz and /metrics.
        #[arg(long, env = "HTTP_ADDR", default_value = "127.0.0.1:8002")]
        http_addr: SocketAddr,
        /// Storage, to give re-dispatched jobs a fresh download link.
        #[command(flatten)]
        s3: pipeline::storage::S3Config,
        #[command(flatten)]
        retention: common::retention::RetentionConfig,
    },
    /// Re-populate JetStream EVENTS from Postgres (after the stream was lost).
    Republish {
        #[command(flatten)]
        conn: Connections,
        /// Send even though EVENTS is not empty.
        #[arg(long)]
        force: bool,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::config::load_dotenv();
    match Cli::parse().command {
        Command::Run {
            conn,
            http_addr,
            s3,
            retention,
        } => {
            common::telemetry::init(&conn.log_format);
            retention.check()?;
            let pool = conn.migrated_pool(4).await.context("migrations")?;
            let nats = common::nats::connect(&conn.nats_url, "janitor", &conn.nats_auth()).await?;
            let care = janitor::tasks::TaskCare::new(
                pool.clone(),
                async_nats::jetstream::new(nats.clone()),
                pipeline::storage::Storage::new(&s3),
            );
            let stages = common::shutdown::Stages::new();
            stages.spawn(|stop| care.run(stop));
            let retention = janitor::retention::Retention::new(
                pool.clone(),
                pipeline::storage::Storage::new(&s3),
                retention,
            );
            stages.spawn(|stop| retention.run(stop));
            stages.spawn(|stop| janitor::run(pool.clone(), stop));
            let readiness = common::ops::Readiness {
                db: Some(pool.clone()),
                nats: Some(nats),
                checks: vec![],
            };
            let ops = common::ops::OpsServer::start(http_addr, readiness)
                .await
                .with_context(|| format!("binding {http_addr}"))?;
            tracing::info!(%http_addr, "janitor running");
            common::shutdown::signal().await;
            stages.stop(std::time::Duration::from_secs(10)).await;
            ops.stop().await;
            Ok(())
        }
        Command::Republish { conn, force } => {
            common::telemetry::init(&conn.log_format);
            let pool = common::db::connect_lazy(&conn.database_url, 2)?;
            let nats =
                common::nats::connect(&conn.nats_url, "janitor-republish", &conn.nats_auth())
                    .await?;
            let js = async_nats::jetstream::new(nats);
            let n = janitor::republish(&pool, &js, force).await?;
            eprintln!("queued {n} events for the relay");
            Ok(())
        }
    }
}
