//! Read models, one module per aggregate. Each `apply` copies what the event carries; values
//! come from the event (never `now()`), so a rebuild reproduces them exactly.

pub mod admin;
pub mod phone_number;
pub mod platform;
pub mod platform_user;
pub mod voice_task;
pub mod worker;

/// Every table a rebuild empties, in deletion order.
pub const TABLES: &[&str] = &[
    "admin_sessions",
    "admin_accounts",
    "ip_bans",
    "ban_appeals",
    "ban_reviews",
    "user_reports",
    "user_ips",
    "platform_users",
    "phone_disputes",
    "phone_reports",
    "phone_numbers",
    "workers",
    "webhook_attempts",
    "platforms",
    "voice_tasks",
    "reanalysis_batches",
];
