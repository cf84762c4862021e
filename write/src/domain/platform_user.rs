//! The `platform_user` aggregate (id = the host platform's user id).
//!
//! Invariants kept here, against the aggregate's own history:
//! * one report per reporter per reported user, and no self-reports;
//! * the auto-ban happens exactly once per ban cycle: when the number of unique reporters since
//!   the last vindication reaches the threshold (a vindication starts a new cycle);
//! * only a pending ban can be reviewed;
//! * a ban is appealed at most once, only while it stands, and an appeal is decided once;
//! * every vindication (a review or an overturned appeal) is followed by `IpBansLifted`, and
//!   decides an appeal still open (`overturned`, by whoever lifted the ban).

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::platform_user::{AppealOutcome, PlatformUserEvent, ReportCategory, ReviewDecision};
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
        /// The reporter's standing from outside this aggregate (earlier targets vindicated, a
        /// new account), 0 to 1; 1 unless report weighting is configured.
        standing: f64,
        /// Where the reporter wants to hear the outcome (opt-in).
        email: Option<String>,
    },
    ReviewBan {
        decision: ReviewDecision,
        reviewer: String,
        /// IPs other banned users hold (from the read model): a vindication keeps them banned.
        shared_ips: BTreeSet<String>,
    },
    /// The banned user appeals the ban in force.
    Appeal {
        appeal_id: Uuid,
        text: String,
        email: Option<String>,
    },
    DecideAppeal {
        appeal_id: Uuid,
        outcome: AppealOutcome,
        decided_by: String,
        note: Option<String>,
        /// As for `ReviewBan`.
        shared_ips: BTreeSet<String>,
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
    /// 409
    #[error("there is no ban in force to appeal")]
    NotBanned,
    /// 409
    #[error("this ban has already been appealed")]
    AlreadyAppealed,
    /// 404
    #[error("no such appeal")]
    UnknownAppeal,
    /// 409
    #[error("this appeal was already decided")]
    AppealDecided,
}

#[derive(Clone)]
pub struct PlatformUserServices {
    /// Unique reporters that trigger the automatic temporary ban.
    pub auto_ban_threshold: u32,
    /// IPv6 addresses of one user count once per network of this prefix (IPv4 per address).
    pub v6_prefix: u8,
    /// Reporters of one ban cycle sharing an address (an IPv6 network) count as one: the
    /// later ones weigh 0. Off by default.
    pub one_vote_per_network: bool,
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
    /// Their summed weights, against the threshold.
    cycle_weight: f64,
    /// Their addresses.
    cycle_reporter_ips: Vec<String>,
    ban: BanStatus,
    review_pending: bool,
    banned_at: Option<DateTime<Utc>>,
    /// The appeal of the ban in force (or of the last one), and whether it is decided.
    appeal: Option<(Uuid, bool)>,
    /// When the appealed ban began.
    appealed_ban: Option<DateTime<Utc>>,
}

impl PlatformUser {
    /// Whether `reporter` has reported this user (ever: one report per pair).
    pub fn was_reported_by(&self, reporter: &str) -> bool {
        self.reporters.contains(reporter)
    }

    pub fn ban_status(&self) -> BanStatus {
        self.ban
    }

    /// Every address recorded for the user (what a ban covers).
    pub fn ips(&self) -> impl Iterator<Item = &str> {
        self.ips.iter().map(String::as_str)
    }

    /// The events of a vindication: the review, the open appeal decided, the IP bans lifted.
    fn vindication(
        &self,
        reviewer: &str,
        banned_at: DateTime<Utc>,
        shared_ips: &BTreeSet<String>,
    ) -> Vec<PlatformUserEvent> {
        let ips: Vec<String> = self.ips.iter().cloned().collect();
        let (kept, lifted) = ips.iter().cloned().partition(|ip| shared_ips.contains(ip));
        let mut events = vec![PlatformUserEvent::BanReviewed {
            decision: ReviewDecision::Vindicated,
            reviewer: reviewer.to_owned(),
            banned_at,
            ips,
        }];
        if let Some((appeal_id, false)) = self.appeal {
            events.push(PlatformUserEvent::AppealDecided {
                appeal_id,
                outcome: AppealOutcome::Overturned,
                decided_by: reviewer.to_owned(),
                note: Some("The ban was lifted on review.".into()),
                permanent: self.ban == BanStatus::Permanent,
                banned_at,
            });
        }
        events.push(PlatformUserEvent::IpBansLifted {
            lifted,
            kept,
            banned_at,
        });
        events
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
                standing,
                email,
            } => {
                if self.reporters.contains(&reporter_id) {
                    return Err(PlatformUserError::AlreadyReported);
                }
                let report_count = self.reporters.len() as u32 + 1;
                let net = |ip: &str| {
                    ip.parse()
                        .ok()
                        .map(|ip| common::net::network(ip, services.v6_prefix))
                };
                let shares_network = services.one_vote_per_network
                    && reporter_ip.as_deref().and_then(net).is_some_and(|mine| {
                        self.cycle_reporter_ips
                            .iter()
                            .any(|other| net(other) == Some(mine))
                    });
                let weight = if shares_network || standing.is_nan() {
                    0.0
                } else {
                    standing.clamp(0.0, 1.0)
                };
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
                        weight,
                        email,
                    },
                    self,
                )
                .await;
                let in_cycle = self.cycle_reporters;
                // A small tolerance: weights like 0.1 do not sum to whole numbers exactly.
                let reached = self.cycle_weight + 1e-9 >= f64::from(services.auto_ban_threshold);
                if !self.ban.is_banned() && reached {
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
            PlatformUserCommand::ReviewBan {
                decision,
                reviewer,
                shared_ips,
            } => {
                let (true, Some(banned_at)) = (self.review_pending, self.banned_at) else {
                    return Err(PlatformUserError::NoPendingBan);
                };
                let events = match decision {
                    ReviewDecision::Permanent => vec![PlatformUserEvent::BanReviewed {
                        decision,
                        reviewer,
                        banned_at,
                        ips: self.ips.iter().cloned().collect(),
                    }],
                    ReviewDecision::Vindicated => {
                        self.vindication(&reviewer, banned_at, &shared_ips)
                    }
                };
                for event in events {
                    sink.write(event, self).await;
                }
            }
            PlatformUserCommand::Appeal {
                appeal_id,
                text,
                email,
            } => {
                let (true, Some(banned_at)) = (self.ban.is_banned(), self.banned_at) else {
                    return Err(PlatformUserError::NotBanned);
                };
                if self.appeal.is_some() {
                    return Err(PlatformUserError::AlreadyAppealed);
                }
                sink.write(
                    PlatformUserEvent::BanAppealed {
                        appeal_id,
                        text,
                        email,
                        banned_at,
                    },
                    self,
                )
                .await;
            }
            PlatformUserCommand::DecideAppeal {
                appeal_id,
                outcome,
                decided_by,
                note,
                shared_ips,
            } => {
                match self.appeal {
                    Some((id, false)) if id == appeal_id => {}
                    Some((id, true)) if id == appeal_id => {
                        return Err(PlatformUserError::AppealDecided)
                    }
                    _ => return Err(PlatformUserError::UnknownAppeal),
                }
                // The ban in force, or the one the appeal was filed against.
                let Some(banned_at) = self.banned_at.or(self.appealed_ban) else {
                    return Err(PlatformUserError::UnknownAppeal);
                };
                let banned = self.ban.is_banned();
                sink.write(
                    PlatformUserEvent::AppealDecided {
                        appeal_id,
                        outcome,
                        decided_by: decided_by.clone(),
                        note,
                        permanent: self.ban == BanStatus::Permanent,
                        banned_at,
                    },
                    self,
                )
                .await;
                if let (AppealOutcome::Overturned, true) = (outcome, banned) {
                    for event in self.vindication(&decided_by, banned_at, &shared_ips) {
                        sink.write(event, self).await;
                    }
                }
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
            PlatformUserEvent::ReportFiled {
                reporter_id,
                reporter_ip,
                weight,
                ..
            } => {
                self.reporters.insert(reporter_id);
                self.cycle_reporters += 1;
                self.cycle_weight += weight;
                self.cycle_reporter_ips.extend(reporter_ip);
            }
            PlatformUserEvent::UserAutoBanned { banned_at, .. } => {
                self.ban = BanStatus::Temporary;
                self.review_pending = true;
                self.banned_at = Some(banned_at);
                self.appeal = None;
            }
            PlatformUserEvent::BanAppealed {
                appeal_id,
                banned_at,
                ..
            } => {
                self.appeal = Some((appeal_id, false));
                self.appealed_ban = Some(banned_at);
            }
            PlatformUserEvent::AppealDecided { appeal_id, .. } => {
                self.appeal = Some((appeal_id, true));
            }
            PlatformUserEvent::IpBansLifted { .. } => {}
            PlatformUserEvent::BanReviewed { decision, .. } => {
                self.review_pending = false;
                match decision {
                    ReviewDecision::Permanent => self.ban = BanStatus::Permanent,
                    ReviewDecision::Vindicated => {
                        self.ban = BanStatus::Vindicated;
                        self.cycle_reporters = 0;
                        self.cycle_weight = 0.0;
                        self.cycle_reporter_ips.clear();
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
            one_vote_per_network: false,
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
            standing: 1.0,
            email: None,
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
            weight: 1.0,
            email: None,
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
            shared_ips: BTreeSet::new(),
        }
    }

    fn lifted(lifted: &[&str], kept: &[&str]) -> PlatformUserEvent {
        let v = |ips: &[&str]| ips.iter().map(|s| s.to_string()).collect();
        PlatformUserEvent::IpBansLifted {
            lifted: v(lifted),
            kept: v(kept),
            banned_at: at(),
        }
    }

    fn appeal(n: u128) -> PlatformUserCommand {
        PlatformUserCommand::Appeal {
            appeal_id: Uuid::from_u128(n),
            text: "It was my brother".into(),
            email: None,
        }
    }

    fn appealed(n: u128) -> PlatformUserEvent {
        PlatformUserEvent::BanAppealed {
            appeal_id: Uuid::from_u128(n),
            text: "It was my brother".into(),
            email: None,
            banned_at: at(),
        }
    }

    fn decide(n: u128, outcome: AppealOutcome, shared: &[&str]) -> PlatformUserCommand {
        PlatformUserCommand::DecideAppeal {
            appeal_id: Uuid::from_u128(n),
            outcome,
            decided_by: "mod".into(),
            note: None,
            shared_ips: shared.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn decided(n: u128, outcome: AppealOutcome) -> PlatformUserEvent {
        PlatformUserEvent::AppealDecided {
            appeal_id: Uuid::from_u128(n),
            outcome,
            decided_by: "mod".into(),
            note: None,
            permanent: false,
            banned_at: at(),
        }
    }

    fn banned_history() -> Vec<PlatformUserEvent> {
        vec![
            ip("10.0.0.1"),
            ip("10.0.0.2"),
            filed(1, "r1", 1),
            banned(1, &["10.0.0.1", "10.0.0.2"]),
        ]
    }

    fn weighted(n: u128, reporter: &str, ip: &str, standing: f64) -> PlatformUserCommand {
        PlatformUserCommand::FileReport {
            report_id: report_id(n),
            reporter_id: reporter.into(),
            reporter_ip: Some(ip.into()),
            reason: None,
            category: ReportCategory::Other,
            room_id: None,
            at: at(),
            standing,
            email: None,
        }
    }

    fn filed_from(n: u128, reporter: &str, ip: &str, count: u32, weight: f64) -> PlatformUserEvent {
        PlatformUserEvent::ReportFiled {
            report_id: report_id(n),
            reporter_id: reporter.into(),
            reporter_ip: Some(ip.into()),
            reason: None,
            category: ReportCategory::Other,
            room_id: None,
            report_count: count,
            weight,
            email: None,
        }
    }

    #[test]
    fn with_one_vote_per_network_reporters_behind_one_network_count_once() {
        let services = PlatformUserServices {
            one_vote_per_network: true,
            ..services()
        };
        let history = vec![
            filed_from(1, "r1", "2001:db8:1::1", 1, 1.0),
            filed_from(2, "r2", "198.51.100.1", 2, 1.0),
            filed_from(3, "r3", "198.51.100.2", 3, 1.0),
        ];
        // Same /64 as r1: weighs nothing, no ban.
        Given::with(services.clone())
            .given(history.clone())
            .when(weighted(4, "r4", "2001:db8:1::99", 1.0))
            .then_expect_events(vec![filed_from(4, "r4", "2001:db8:1::99", 4, 0.0)]);
        // A fourth network bans.
        Given::with(services)
            .given(history)
            .when(weighted(4, "r4", "203.0.113.4", 1.0))
            .then_expect_events(vec![
                filed_from(4, "r4", "203.0.113.4", 4, 1.0),
                banned(4, &[]),
            ]);
    }

    #[test]
    fn the_threshold_is_met_by_the_weighted_sum() {
        let half: Vec<_> = (1..=7)
            .map(|n| {
                filed_from(
                    n,
                    &format!("r{n}"),
                    &format!("198.51.100.{n}"),
                    n as u32,
                    0.5,
                )
            })
            .collect();
        Given::with(services())
            .given(half[..6].to_vec())
            .when(weighted(7, "r7", "198.51.100.7", 0.5))
            .then_expect_events(vec![filed_from(7, "r7", "198.51.100.7", 7, 0.5)]);
        Given::with(services())
            .given(half)
            .when(weighted(8, "r8", "198.51.100.8", 0.5))
            .then_expect_events(vec![
                filed_from(8, "r8", "198.51.100.8", 8, 0.5),
                PlatformUserEvent::UserAutoBanned {
                    reason: "Auto-banned: 8 reports received".into(),
                    report_count: 8,
                    ips: vec![],
                    banned_at: at(),
                },
            ]);
        // A standing out of range is clamped.
        Given::with(services())
            .given_no_previous_events()
            .when(weighted(1, "r1", "198.51.100.1", 7.0))
            .then_expect_events(vec![filed_from(1, "r1", "198.51.100.1", 1, 1.0)]);
    }

    #[test]
    fn a_ban_is_appealed_once_and_only_while_it_stands() {
        Given::with(services())
            .given(vec![filed(1, "r1", 1)])
            .when(appeal(9))
            .then_expect_error(PlatformUserError::NotBanned);
        Given::with(services())
            .given(banned_history())
            .when(appeal(9))
            .then_expect_events(vec![appealed(9)]);
        let mut twice = banned_history();
        twice.push(appealed(9));
        Given::with(services())
            .given(twice)
            .when(appeal(10))
            .then_expect_error(PlatformUserError::AlreadyAppealed);
        let mut permanent = banned_history();
        permanent.push(reviewed(
            ReviewDecision::Permanent,
            &["10.0.0.1", "10.0.0.2"],
        ));
        Given::with(services())
            .given(permanent)
            .when(appeal(9))
            .then_expect_events(vec![appealed(9)]);
    }

    #[test]
    fn an_overturned_appeal_vindicates_and_keeps_shared_ips_banned() {
        let mut history = banned_history();
        history.push(appealed(9));
        Given::with(services())
            .given(history.clone())
            .when(decide(9, AppealOutcome::Overturned, &["10.0.0.2"]))
            .then_expect_events(vec![
                decided(9, AppealOutcome::Overturned),
                PlatformUserEvent::BanReviewed {
                    decision: ReviewDecision::Vindicated,
                    reviewer: "mod".into(),
                    banned_at: at(),
                    ips: vec!["10.0.0.1".into(), "10.0.0.2".into()],
                },
                lifted(&["10.0.0.1"], &["10.0.0.2"]),
            ]);
        Given::with(services())
            .given(history.clone())
            .when(decide(9, AppealOutcome::Upheld, &[]))
            .then_expect_events(vec![decided(9, AppealOutcome::Upheld)]);
        history.push(decided(9, AppealOutcome::Upheld));
        Given::with(services())
            .given(history.clone())
            .when(decide(9, AppealOutcome::Overturned, &[]))
            .then_expect_error(PlatformUserError::AppealDecided);
        Given::with(services())
            .given(history)
            .when(decide(8, AppealOutcome::Overturned, &[]))
            .then_expect_error(PlatformUserError::UnknownAppeal);
    }

    #[test]
    fn a_review_that_lifts_the_ban_decides_the_open_appeal() {
        let mut history = banned_history();
        history.push(appealed(9));
        Given::with(services())
            .given(history)
            .when(PlatformUserCommand::ReviewBan {
                decision: ReviewDecision::Vindicated,
                reviewer: "admin".into(),
                shared_ips: BTreeSet::new(),
            })
            .then_expect_events(vec![
                reviewed(ReviewDecision::Vindicated, &["10.0.0.1", "10.0.0.2"]),
                PlatformUserEvent::AppealDecided {
                    appeal_id: Uuid::from_u128(9),
                    outcome: AppealOutcome::Overturned,
                    decided_by: "admin".into(),
                    note: Some("The ban was lifted on review.".into()),
                    permanent: false,
                    banned_at: at(),
                },
                lifted(&["10.0.0.1", "10.0.0.2"], &[]),
            ]);
    }

    #[test]
    fn a_new_ban_may_be_appealed_again() {
        let mut history = banned_history();
        history.push(appealed(9));
        history.push(decided(9, AppealOutcome::Overturned));
        history.push(reviewed(ReviewDecision::Vindicated, &[]));
        history.push(lifted(&[], &[]));
        history.push(banned(2, &[]));
        Given::with(services())
            .given(history)
            .when(appeal(10))
            .then_expect_events(vec![appealed(10)]);
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
            .then_expect_events(vec![
                reviewed(ReviewDecision::Vindicated, &["10.0.0.9"]),
                lifted(&["10.0.0.9"], &[]),
            ]);
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
