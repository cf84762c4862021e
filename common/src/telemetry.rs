//! Tracing set-up: human-readable by default, JSON lines when `LOG_FORMAT=json`, on stderr.

use tracing_subscriber::{fmt, EnvFilter};

/// Installs the global subscriber. `RUST_LOG` filters (default `info`). Safe to call twice.
pub fn init(log_format: &str) {
    init_with_default(log_format, "info")
}

/// As [`init`], with `default` as the filter when `RUST_LOG` is unset (the worker quiets
/// whisper.cpp's chatty model-loading lines: `info,whisper_rs=warn`).
pub fn init_with_default(log_format: &str, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // stderr: stdout belongs to commands' output (`projector replay` prints NDJSON there).
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr);
    let result = if log_format.eq_ignore_ascii_case("json") {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    // A second init (tests) keeps the first subscriber.
    drop(result);
}
