//! What every blacklist process shares.
//!
//! ```text
//!  main.rs ─► config (env + .env) ─► telemetry::init ─► db::connect / nats::connect
//!          ─► ops::router (/healthz /readyz /metrics) + the process's own work
//!          ─► shutdown::signal() ends both
//! ```

pub mod config;
pub mod db;
pub mod nats;
pub mod net;
pub mod ops;
pub mod retention;
pub mod shutdown;
pub mod telemetry;
pub mod vault;
