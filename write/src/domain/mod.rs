//! Aggregates: one module each, with its commands, state, error and given/when/then tests.
//! Event types live in the `events` crate, the contract every process shares.

pub mod admin;
pub mod credential;
pub mod phone_number;
pub mod platform;
pub mod platform_user;
pub mod session;
pub mod voice_task;
pub mod worker;
