//! The event contract shared by every blacklist process.
//!
//! ```text
//!  api (cqrs-es aggregates) ──► Postgres `events` + `outbox` ──► relay ──► JetStream EVENTS
//!                                                                         │
//!                      projector / analysts / notifier ◄── Envelope ◄─────┘  subject ev.<aggregate>.<id>.<Event>
//! ```
//!
//! * [`Envelope`]: the one shape every event has on the wire.
//! * [`subject`]: how subjects and `Nats-Msg-Id`s are built.
//! * [`version`]: how old payload versions keep parsing (upcasters).
//! * [`topology`]: the JetStream streams, consumers and KV buckets, read from `nats/jetstream/`.
//! * one module per aggregate with its event enum ([`admin`]).

pub mod admin;
pub mod envelope;
pub mod phone_number;
pub mod platform;
pub mod platform_user;
pub mod subject;
pub mod task;
pub mod topology;
pub mod version;
pub mod voice_task;
pub mod worker;

pub use envelope::{DecodeError, Envelope};
