//! Read models, one module per aggregate. Each `apply` copies what the event carries; values
//! come from the event (never `now()`), so a rebuild reproduces them exactly.

pub mod admin;

/// Every table a rebuild empties, in deletion order.
pub const TABLES: &[&str] = &["admin_sessions", "admin_accounts"];
