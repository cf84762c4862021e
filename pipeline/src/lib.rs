//! The voice pipeline, control plane: everything between an uploaded recording and its
//! verdict except HTTP. Each background stage takes only what it uses and has a single-step
//! `handle(Delivery) -> Disposition` that tests drive without NATS.
//!
//! ```text
//!  task events ─► dispatch::DispatchStage ─► TASKS ─► workers anywhere ─► RESULTS
//!  RESULTS ─► intake::Intake ─► Start / Complete / Fail on the task
//!  TaskCompleted ─► notifier::Notifier ─► verdict email
//!  worker_access: callout (NATS auth), heartbeats, revocation (kick)
//!  storage: presigned uploads and downloads (shared with the api and the janitor)
//! ```

pub mod dispatch;
pub mod intake;
pub mod notifier;
pub mod storage;
pub mod worker_access;
