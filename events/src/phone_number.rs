//! Events of the `phone_number` aggregate (id = the number in E.164, e.g. `+14155550100`).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::version::Upcaster;

pub const AGGREGATE_TYPE: &str = "phone_number";

pub const UPCASTERS: &[Upcaster] = &[];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Scam,
    Spam,
    Robocall,
    Harassment,
    Other,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Scam => "scam",
            Category::Spam => "spam",
            Category::Robocall => "robocall",
            Category::Harassment => "harassment",
            Category::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Category> {
        [
            Category::Scam,
            Category::Spam,
            Category::Robocall,
            Category::Harassment,
            Category::Other,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum PhoneNumberEvent {
    /// A report, always recorded. `counted` is false when the same IP already had a counted
    /// report of this number in the previous 24 hours: one reporter cannot inflate a number.
    PhoneReported {
        report_id: Uuid,
        category: Category,
        description: Option<String>,
        reporter_ip: Option<String>,
        counted: bool,
        reported_at: DateTime<Utc>,
        /// Set when the report is the evidence of an analysed call from this number that was
        /// judged a scam (filed by the voice pipeline; pending moderation like any report).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        task_id: Option<Uuid>,
    },
    PhoneReportApproved {
        report_id: Uuid,
        moderator: String,
    },
    PhoneReportRejected {
        report_id: Uuid,
        moderator: String,
    },
    PhoneReportDeleted {
        report_id: Uuid,
        moderator: String,
    },
    /// The number's owner disputes its listing (only while it is listed dangerous; one open
    /// dispute at a time). `email`, the contact for the outcome, is kept in the event store
    /// only: it is never on the stream.
    NumberDisputed {
        dispute_id: Uuid,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    },
    /// A moderator decided the dispute. `overturned` rejects the approved reports in `cleared`,
    /// so the number is no longer listed (new reports may list it again).
    DisputeDecided {
        dispute_id: Uuid,
        outcome: crate::platform_user::AppealOutcome,
        moderator: String,
        note: Option<String>,
        cleared: Vec<Uuid>,
    },
}

impl DomainEvent for PhoneNumberEvent {
    fn event_type(&self) -> String {
        match self {
            PhoneNumberEvent::PhoneReported { .. } => "PhoneReported",
            PhoneNumberEvent::PhoneReportApproved { .. } => "PhoneReportApproved",
            PhoneNumberEvent::PhoneReportRejected { .. } => "PhoneReportRejected",
            PhoneNumberEvent::PhoneReportDeleted { .. } => "PhoneReportDeleted",
            PhoneNumberEvent::NumberDisputed { .. } => "NumberDisputed",
            PhoneNumberEvent::DisputeDecided { .. } => "DisputeDecided",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Key of a number in the `phone-reputation` bucket: the E.164 digits (KV keys cannot hold `+`).
pub fn reputation_key(e164: &str) -> String {
    e164.trim_start_matches('+').to_string()
}
