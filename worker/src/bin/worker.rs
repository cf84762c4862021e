//! `worker` — all it needs is NATS_URL and WORKER_TOKEN.
//! `worker analyze FILE…` — analyses recordings on this machine, without NATS (one JSON line
//! per file), with the same settings; what `make eval` runs.
//! `worker train-model` — trains the analyzer's learned check (`make train-model`).
//! `worker decode-audio` — internal: decodes one file from stdin under the limits the worker
//! sets (worker/src/sandbox.rs); runs before any thread starts.

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("decode-audio") {
        std::process::exit(worker::sandbox::child_main(&args[2..]));
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
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
