//! `worker` — all it needs is NATS_URL and WORKER_TOKEN.

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::config::load_dotenv();
    let config = worker::Config::parse();
    common::telemetry::init(&config.log_format);
    worker::run(config, common::shutdown::signal()).await
}
