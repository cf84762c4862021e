//! `worker` — all it needs is NATS_URL and WORKER_TOKEN.
//! `worker analyze FILE…` — analyses recordings on this machine, without NATS (one JSON line
//! per file), with the same settings; what `make eval` runs.
//! `worker train-model` — trains the analyzer's learned check (`make train-model`).

use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    common::config::load_dotenv();
    if std::env::args_os().nth(1).is_some_and(|a| a == "analyze") {
        let cli = worker::cli::AnalyzeCli::parse_from(std::env::args_os().skip(1));
        common::telemetry::init_with_default(&cli.log_format, worker::LOG_DEFAULT);
        return worker::cli::analyze_files(cli).await;
    }
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "train-model")
    {
        let cli = worker::cli::TrainCli::parse_from(std::env::args_os().skip(1));
        return worker::cli::train_model(cli);
    }
    let config = worker::Config::parse();
    common::telemetry::init_with_default(&config.log_format, worker::LOG_DEFAULT);
    worker::run(config, common::shutdown::signal()).await
}
