//! Events of the `platform_user` aggregate (id = the host platform's user id): the people who
//! report each other, their profiles and IPs, reports against them, bans and reviews.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::version::Upcaster;

pub const AGGREGATE_TYPE: &str = "platform_user";

pub const UPCASTERS: &[Upcaster] = &[];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReviewDecision {
    /// The ban stays; the user is on the public blacklist.
    Permanent,
    /// The ban is lifted; the user's IPs are unbanned unless another banned user shares them.
    Vindicated,
}

/// What a user report is about. Reports from before categories existed read as `other`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ReportCategory {
    Harassment,
    Hate,
    SexualContent,
    MinorSafety,
    Scam,
    Spam,
    Impersonation,
    #[default]
    Other,
}

impl ReportCategory {
    pub const ALL: [ReportCategory; 8] = [
        ReportCategory::Harassment,
        ReportCategory::Hate,
        ReportCategory::SexualContent,
        ReportCategory::MinorSafety,
        ReportCategory::Scam,
        ReportCategory::Spam,
        ReportCategory::Impersonation,
        ReportCategory::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportCategory::Harassment => "harassment",
            ReportCategory::Hate => "hate",
            ReportCategory::SexualContent => "sexual_content",
            ReportCategory::MinorSafety => "minor_safety",
            ReportCategory::Scam => "scam",
            ReportCategory::Spam => "spam",
            ReportCategory::Impersonation => "impersonation",
            ReportCategory::Other => "other",
        }
    }

    pub fn parse(raw: &str) -> Option<ReportCategory> {
        ReportCategory::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// How an admin decided an appeal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppealOutcome {
    /// The ban stays as it is.
    Upheld,
    /// The ban is lifted (a vindication, with the shared-IP rule).
    Overturned,
}

impl AppealOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AppealOutcome::Upheld => "upheld",
            AppealOutcome::Overturned => "overturned",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum PlatformUserEvent {
    /// The host platform's token showed a new or changed profile.
    UserProfileObserved {
        name: Option<String>,
        picture: Option<String>,
        video: Option<String>,
    },
    /// A request with the user's token came from an address not seen for them before.
    UserIpObserved { ip: String },
    /// Another user reported this one. `reportCount` is the number of unique reporters after it.
    ReportFiled {
        report_id: Uuid,
        reporter_id: String,
        reporter_ip: Option<String>,
        reason: Option<String>,
        /// `other` in reports from before categories.
        #[serde(default)]
        category: ReportCategory,
        room_id: Option<Uuid>,
        report_count: u32,
        /// What the report counts towards the auto-ban threshold: 1 unless report weighting is
        /// configured (the reporter's standing); 1 in reports from before weights.
        #[serde(default = "unit_weight")]
        weight: f64,
        /// Where the reporter asked to hear the outcome (opt-in); event store only, never on
        /// the stream.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
    },
    /// The unique-reporter count reached the threshold: banned `temporary`, review `pending`,
    /// and every IP in `ips` (all seen for the user) is banned.
    UserAutoBanned {
        reason: String,
        report_count: u32,
        ips: Vec<String>,
        banned_at: DateTime<Utc>,
    },
    /// An admin decided a pending ban. `ips` are the user's IPs; `bannedAt` is when the ban began.
    BanReviewed {
        decision: ReviewDecision,
        reviewer: String,
        banned_at: DateTime<Utc>,
        ips: Vec<String>,
    },
    /// The banned user appealed the ban that began at `bannedAt` (once per ban). `email`, where
    /// given for the outcome, is kept in the event store only: it is never on the stream.
    BanAppealed {
        appeal_id: Uuid,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        email: Option<String>,
        banned_at: DateTime<Utc>,
    },
    /// The appeal was decided: by an admin, or `overturned` by a review that lifted the ban first.
    /// `permanent` and `bannedAt` describe the appealed ban when the appeal was decided.
    AppealDecided {
        appeal_id: Uuid,
        outcome: AppealOutcome,
        decided_by: String,
        note: Option<String>,
        permanent: bool,
        banned_at: DateTime<Utc>,
    },
    /// Follows every vindication: the user's IPs unbanned (`lifted`) and those still banned
    /// because another banned user holds them (`kept`), as the read model had it then.
    IpBansLifted {
        lifted: Vec<String>,
        kept: Vec<String>,
        banned_at: DateTime<Utc>,
    },
}

impl DomainEvent for PlatformUserEvent {
    fn event_type(&self) -> String {
        match self {
            PlatformUserEvent::UserProfileObserved { .. } => "UserProfileObserved",
            PlatformUserEvent::UserIpObserved { .. } => "UserIpObserved",
            PlatformUserEvent::ReportFiled { .. } => "ReportFiled",
            PlatformUserEvent::UserAutoBanned { .. } => "UserAutoBanned",
            PlatformUserEvent::BanReviewed { .. } => "BanReviewed",
            PlatformUserEvent::BanAppealed { .. } => "BanAppealed",
            PlatformUserEvent::AppealDecided { .. } => "AppealDecided",
            PlatformUserEvent::IpBansLifted { .. } => "IpBansLifted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

fn unit_weight() -> f64 {
    1.0
}

/// KV keys cannot hold `:`; IPv6 addresses use `_` instead (IPv4 never contains `_`).
pub fn ip_to_key(ip: &str) -> String {
    ip.replace(':', "_")
}

pub fn key_to_ip(key: &str) -> String {
    key.replace('_', ":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_keys_round_trip() {
        for ip in ["203.0.113.9", "2001:db8::1", "::ffff:1.2.3.4"] {
            let key = ip_to_key(ip);
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-/_=.".contains(c)),
                "{key}"
            );
            assert_eq!(key_to_ip(&key), ip);
        }
    }
}
