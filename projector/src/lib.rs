//! The projector: JetStream `EVENTS` → Postgres read models (and KV buckets the api watches).
//!
//! ```text
//!  EVENTS ──durable pull consumer "projector"──► process_batch
//!            one transaction: advisory lock · checkpoint · apply each event in stream order
//!            (a gap in delivery is filled by direct get) · KV puts · commit · then ack
//!  `projector rebuild`: the same apply, from stream sequence 1, in one transaction
//!  `projector replay`:  NDJSON for analysts, with read-only credentials
//! ```
//!
//! Invariant 2: an event is applied at most once — the checkpoint moves in the same transaction
//! as the rows it produced, and messages are acked only after commit. Invariant 4: read models
//! are a pure function of the stream, so a rebuild yields the same content.

pub mod apply;
pub mod consumer;
pub mod effects;
pub mod readmodels;
pub mod rebuild;
pub mod replay;

pub use apply::{apply_event, Effects};
pub use consumer::Projector;
