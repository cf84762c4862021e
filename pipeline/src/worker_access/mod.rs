//! Worker access over NATS: how a worker with nothing but a revocable token gets on
//! ([`callout`]), shows it is alive ([`heartbeats`]) and is cut off ([`revocation`]).

pub mod callout;
pub mod heartbeats;
pub mod revocation;
