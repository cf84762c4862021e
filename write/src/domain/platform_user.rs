//! The `platform_user` aggregate (id = the host platform's user id).
//!
//! Invariants kept here, against the aggregate's own history:
//! * one report per reporter per reported user, and no self-reports;
//! * the auto-ban happens exactly once per ban cycle: when the number of unique reporters since
//!   the last vindication reaches the threshold (a vindication starts a new cycle);
//! * only a pending ban can be reviewed.

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::platform_user::{PlatformUserEvent, ReportCategory, ReviewDecision};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub name: Option<String>,
    pub picture: Option<String>,
    pub video: Option<String>,
}

#[derive(Debug, Clone)]
pub enum PlatformUserCommand {
    /// A request with the user's session token: records a changed profile and a new IP.
    ObserveSession {
        profile: Profile,
        ip: Option<String>,
    },
    FileReport {
        report_id: Uuid,
        reporter_id: String,
        reporter_ip: Option<String>,
        reason: Option<String>,
        category: ReportCategory,
        room_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    ReviewBan {
        decision: ReviewDecision,
        reviewer: String,
    },
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PlatformUserError {
    /// 422
    #[error("users cannot report themselves")]
    SelfReport,
    /// 409
    #[error("you have already reported this user")]
    AlreadyReported,
    /// 409
    #[error("there is no pending ban to review for this user")]
    NoPendingBan,
}

#[derive(Clone)]
pub struct PlatformUserServices {
    /// Unique reporters that trigger the automatic temporary ban.
    pub auto_ban_threshold: u32,
    /// IPv6 addresses of one user count once per network of this prefix (IPv4 per address).
    pub v6_prefix: u8,
}

/// Networks recorded per user at most: a session rotating addresses cannot grow its history (or
/// a future ban list) without bound. Later addresses are not recorded.
pub const MAX_IPS_PER_USER: usize = 32;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BanStatus {
    #[default]
    None,
    Temporary,
    Permanent,
    Vindicated,
}

impl BanStatus {
    pub fn is_banned(self) -> bool {
        matches!(self, BanStatus::Temporary | BanStatus::Permanent)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BanStatus::None => "none",
            BanStatus::Temporary => "temporary",
            BanStatus::Permanent => "permanent",
            BanStatus::Vindicated => "vindicated",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlatformUser {
    name: Option<String>,
    picture: Option<String>,
    video: Option<String>,
    ips: BTreeSet<String>,
    reporters: HashSet<String>,
    /// Unique reporters counted towards the current ban cycle.
    cycle_reporters: u32,
    ban: BanStatus,
    review_pending: bool,
    banned_at: Option<DateTime<Utc>>,
}

impl PlatformUser {
    /// Whether `reporter` has reported this user (ever: one report per pair).
    pub fn was_reported_by(&self, reporter: &str) -> bool {
        self.reporters.contains(reporter)
    }

    pub fn ban_status(&self) -> BanStatus {
        self.ban
    }

    /// Whether `ip` is worth a `UserIpObserved`: a network not seen for this user yet, while
    /// fewer than [`MAX_IPS_PER_USER`] are recorded. (A ban covers a whole IPv6 network anyway.)
    fn records(&self, ip: &str, v6_prefix: u8) -> bool {
        let net = |ip: &str| {
            ip.parse()
                .map(|ip| common::net::network(ip, v6_prefix))
                .ok()
        };
        let Some(new) = net(ip) else {
            return false;
        };
        self.ips.len() < MAX_IPS_PER_USER && !self.ips.iter().any(|known| net(known) == Some(new))
    }
}

impl Aggregate for PlatformUser {
    const TYPE: &'static str = events::platform_user::AGGREGATE_TYPE;
    type Command = PlatformUserCommand;
    type Event = PlatformUserEvent;
    type Error = PlatformUserError;
    type Services = PlatformUserServices;

    async fn handle(
        &mut self,
        command: Self::Command,
        services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            PlatformUserCommand::ObserveSession { profile, ip } => {
                let known = Profile {
                    name: self.name.clone(),
                    picture: self.picture.clone(),
                    video: self.video.clone(),
                };
                if profile != known {
                    let Profile {
                        name,
                        picture,
                        video,
                    } = profile;
                    sink.write(
                        PlatformUserEvent::UserProfileObserved {
                            name,
                            picture,
                            video,
                        },
                        self,
                    )
                    .await;
                }
                if let Some(ip) = ip.filter(|ip| self.records(ip, services.v6_prefix)) {
                    sink.write(PlatformUserEvent::UserIpObserved { ip }, self)
                        .await;
                }
            }
            PlatformUserCommand::FileReport {
                report_id,
                reporter_id,
                reporter_ip,
                reason,
                category,
                room_id,
                at,
            } => {
                if self.reporters.contains(&reporter_id) {
                    return Err(PlatformUserError::AlreadyReported);
                }
                let report_count = self.reporters.len() as u32 + 1;
                let reason_text = reason.clone();
                sink.write(
                    PlatformUserEvent::ReportFiled {
                        report_id,
                        reporter_id,
                        reporter_ip,
                        reason,
                        category,
                        room_id,
                        report_count,
                    },
                    self,
                )
                .await;
                let in_cycle = self.cycle_reporters;
                if !self.ban.is_banned() && in_cycle >= services.auto_ban_threshold {
                    let reason = match reason_text {
                        Some(r) if !r.trim().is_empty() => {
                            format!(
                                "Auto-banned: {in_cycle} reports received (latest: {})",
                                r.trim()
                            )
                        }
                        _ => format!("Auto-banned: {in_cycle} reports received"),
                    };
                    let ips = self.ips.iter().cloned().collect();
                    let event = PlatformUserEvent::UserAutoBanned {
                        reason,
                        report_count,
                        ips,
                        banned_at: at,
                    };
                    sink.write(event, self).await;
                }
            }
            PlatformUserCommand::ReviewBan { decision, reviewer } => {
                let (true, Some(banned_at)) = (self.review_pending, self.banned_at) else {
                    return Err(PlatformUserError::NoPendingBan);
                };
                let ips = self.ips.iter().cloned().collect();
                sink.write(
                    PlatformUserEvent::BanReviewed {
                        decision,
                        reviewer,
                        banned_at,
                        ips,
                    },
                    self,
                )
                .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PlatformUserEvent::UserProfileObserved {
                name,
                picture,
                video,
            } => {
                self.name = name;
                self.picture = picture;
                self.video = video;
            }
            PlatformUserEvent::UserIpObserved { ip } => {
                self.ips.insert(ip);
            }
            PlatformUserEvent::ReportFiled { reporter_id, .. } => {
                self.reporters.insert(reporter_id);
                self.cycle_reporters += 1;
            }
            PlatformUserEvent::UserAutoBanned { banned_at, .. } => {
                self.ban = BanStatus::Temporary;
                self.review_pending = true;
                self.banned_at = Some(banned_at);
            }
            PlatformUserEvent::BanReviewed { decision, .. } => {
                self.review_pending = false;
                match decision {
                    ReviewDecision::Permanent => self.ban = BanStatus::Permanent,
                    ReviewDecision::Vindicated => {
                        self.ban = BanStatus::Vindicated;
                        self.cycle_reporters = 0;
                        self.banned_at = None;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    type Given = TestFramework<PlatformUser>;

    fn services() -> PlatformUserServices {
        PlatformUserServices {
            v6_prefix: 64,
            auto_ban_threshold: 4,
        }
    }

    fn at() -> DateTime<Utc> {
        "2026-11-21T09:00:00Z".parse().unwrap()
    }

    fn report_id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn report(n: u128, reporter: &str) -> PlatformUserCommand {
        PlatformUserCommand::FileReport {
            report_id: report_id(n),
            reporter_id: reporter.into(),
            reporter_ip: Some("198.51.100.7".into()),
            reason: None,
            category: ReportCategory::Other,
            room_id: None,
            at: at(),
        }
    }

    fn filed(n: u128, reporter: &str, count: u32) -> PlatformUserEvent {
        PlatformUserEvent::ReportFiled {
            report_id: report_id(n),
            reporter_id: reporter.into(),
            reporter_ip: Some("198.51.100.7".into()),
            reason: None,
            category: ReportCategory::Other,
            room_id: None,
            report_count: count,
        }
    }

    fn ip(ip: &str) -> PlatformUserEvent {
        PlatformUserEvent::UserIpObserved { ip: ip.into() }
    }

    fn banned(count: u32, ips: &[&str]) -> PlatformUserEvent {
        PlatformUserEvent::UserAutoBanned {
            reason: "Auto-banned: 4 reports received".into(),
            report_count: count,
            ips: ips.iter().map(|s| s.to_string()).collect(),
            banned_at: at(),
        }
    }

    fn review(decision: ReviewDecision) -> PlatformUserCommand {
        PlatformUserCommand::ReviewBan {
            decision,
            reviewer: "admin".into(),
        }
    }

    fn reviewed(decision: ReviewDecision, ips: &[&str]) -> PlatformUserEvent {
        PlatformUserEvent::BanReviewed {
            decision,
            reviewer: "admin".into(),
            banned_at: at(),
            ips: ips.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_session_records_a_new_profile_and_a_new_ip_once() {
        let profile = Profile {
            name: Some("Ann".into()),
            picture: None,
            video: None,
        };
        let observe = |ip: &str| PlatformUserCommand::ObserveSession {
            profile: profile.clone(),
            ip: Some(ip.into()),
        };
        let seen = PlatformUserEvent::UserProfileObserved {
            name: Some("Ann".into()),
            picture: None,
            video: None,
        };
        Given::with(services())
            .given_no_previous_events()
            .when(observe("10.0.0.1"))
            .then_expect_events(vec![seen.clone(), ip("10.0.0.1")]);
        Given::with(services())
            .given(vec![seen.clone(), ip("10.0.0.1")])
            .when(observe("10.0.0.1"))
            .then_expect_events(vec![]);
        Given::with(services())
            .given(vec![seen, ip("10.0.0.1")])
            .when(observe("10.0.0.2"))
            .then_expect_events(vec![ip("10.0.0.2")]);
    }

    /// The hardening review: one session rotating addresses recorded 60 `UserIpObserved` in a
    /// row. An IPv6 network counts once, and a user's history stops at `MAX_IPS_PER_USER`.
    #[test]
    fn a_rotating_session_records_one_address_per_network_and_a_bounded_history() {
        let observe = |ip: &str| PlatformUserCommand::ObserveSession {
            profile: Profile::default(),
            ip: Some(ip.into()),
        };
        Given::with(services())
            .given(vec![ip("2001:db8:66::1")])
            .when(observe("2001:db8:66::2"))
            .then_expect_events(vec![]);
        Given::with(services())
            .given(vec![ip("2001:db8:66::1")])
            .when(observe("2001:db8:67::1"))
            .then_expect_events(vec![ip("2001:db8:67::1")]);
        let full: Vec<_> = (0..MAX_IPS_PER_USER)
            .map(|i| ip(&format!("10.0.{}.{}", i / 250, i % 250 + 1)))
            .collect();
        Given::with(services())
            .given(full)
            .when(observe("192.0.2.99"))
            .then_expect_events(vec![]);
        Given::with(services())
            .given_no_previous_events()
            .when(observe("not an address"))
            .then_expect_events(vec![]);
    }

    #[test]
    fn one_report_per_reporter() {
        Given::with(services())
            .given(vec![filed(1, "r1", 1)])
            .when(report(2, "r1"))
            .then_expect_error(PlatformUserError::AlreadyReported);
    }

    #[test]
    fn the_fourth_unique_reporter_bans_every_ip_seen() {
        Given::with(services())
            .given(vec![
                ip("10.0.0.1"),
                ip("10.0.0.2"),
                filed(1, "r1", 1),
                filed(2, "r2", 2),
                filed(3, "r3", 3),
            ])
            .when(report(4, "r4"))
            .then_expect_events(vec![
                filed(4, "r4", 4),
                banned(4, &["10.0.0.1", "10.0.0.2"]),
            ]);
    }

    #[test]
    fn reports_below_and_above_the_threshold_do_not_ban_again() {
        Given::with(services())
            .given(vec![filed(1, "r1", 1), filed(2, "r2", 2)])
            .when(report(3, "r3"))
            .then_expect_events(vec![filed(3, "r3", 3)]);
        Given::with(services())
            .given(vec![
                filed(1, "r1", 1),
                filed(2, "r2", 2),
                filed(3, "r3", 3),
                filed(4, "r4", 4),
                banned(4, &[]),
            ])
            .when(report(5, "r5"))
            .then_expect_events(vec![filed(5, "r5", 5)]);
    }

    #[test]
    fn only_a_pending_ban_is_reviewed() {
        Given::with(services())
            .given(vec![filed(1, "r1", 1)])
            .when(review(ReviewDecision::Permanent))
            .then_expect_error(PlatformUserError::NoPendingBan);
        let history = vec![ip("10.0.0.9"), filed(1, "r1", 1), banned(1, &["10.0.0.9"])];
        Given::with(services())
            .given(history.clone())
            .when(review(ReviewDecision::Vindicated))
            .then_expect_events(vec![reviewed(ReviewDecision::Vindicated, &["10.0.0.9"])]);
        let mut decided = history;
        decided.push(reviewed(ReviewDecision::Permanent, &["10.0.0.9"]));
        Given::with(services())
            .given(decided)
            .when(review(ReviewDecision::Vindicated))
            .then_expect_error(PlatformUserError::NoPendingBan);
    }

    #[test]
    fn after_a_vindication_a_new_cycle_needs_the_full_threshold() {
        let mut history = vec![
            filed(1, "r1", 1),
            filed(2, "r2", 2),
            filed(3, "r3", 3),
            filed(4, "r4", 4),
        ];
        history.push(banned(4, &[]));
        history.push(reviewed(ReviewDecision::Vindicated, &[]));
        history.extend([filed(5, "r5", 5), filed(6, "r6", 6), filed(7, "r7", 7)]);
        Given::with(services())
            .given(history.clone())
            .when(report(8, "r8"))
            .then_expect_events(vec![filed(8, "r8", 8), banned(8, &[])]);
        // (the reason counts the reports of this cycle: 4)
        history.pop();
        Given::with(services())
            .given(history)
            .when(report(7, "r7b"))
            .then_expect_events(vec![filed(7, "r7b", 7)]);
    }
}
