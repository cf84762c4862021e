//! The blacklist api process: HTTP in, commands on cqrs-es aggregates, events out.
//!
//! ```text
//!  HTTP ─► http::* handlers ─► commands::execute ─► domain::<aggregate> (cqrs-es)
//!                                                      │ postgres-es: events + outbox (one tx)
//!                                                      ▼
//!                               relay ─► JetStream EVENTS ─► projector ─► read models
//!  KV admin-revoked ─watch─► kv_set::KvSet (every instance) ─► auth::AdminTokens::verify
//! ```

/// Object storage lives in the pipeline crate (the janitor shares it).
pub use pipeline::storage;
/// The write side lives in its own crate; these names keep the api's paths.
pub use write::{commands, domain, passwords, relay};

pub mod app;
pub mod auth;
pub mod ban_feed;
pub mod cli;
pub mod client_ip;
pub mod config;
pub mod coordination;
pub mod error;
pub mod evasion;
pub mod http;
pub mod kv_set;
pub mod pages;
pub mod paging;
pub mod platform_auth;
pub mod queries;
pub mod ratelimit;
pub mod server;
pub mod session_auth;
pub mod turnstile;
pub mod webhooks;

pub use app::AppState;
pub use config::Config;
pub use server::{run, Api};
