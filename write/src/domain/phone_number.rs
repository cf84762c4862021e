//! The `phone_number` aggregate (id = E.164) and number normalisation.
//!
//! Invariants: a report is decided (approved or rejected) once; a deleted report is gone; and a
//! reporter cannot inflate a number: reports of one number from one IP within 24 hours count
//! once (each is still recorded, with `counted: false`).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::phone_number::{Category, PhoneNumberEvent};
use events::platform_user::AppealOutcome;
use phonenumber::{country, Mode, ParseError};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Longest input accepted before parsing (formatting characters included).
const MAX_INPUT: usize = 32;

/// Why a number was refused (422 with this text).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum NumberError {
    #[error("a phone number is required")]
    Empty,
    #[error("phone numbers contain digits and + ( ) - . / and spaces only")]
    BadCharacters,
    #[error("the number is too long")]
    TooLong,
    #[error("unknown region {0:?}: use an ISO 3166 code such as US or CH")]
    UnknownRegion(String),
    #[error("without a leading + or a region the country cannot be known")]
    NeedsRegion,
    #[error("not a phone number: {0}")]
    Unparseable(String),
    #[error("{0} is not a valid number in its numbering plan")]
    Invalid(String),
}

/// Normalises any spelling of a number to E.164, with the numbering plans of libphonenumber.
pub fn normalize(raw: &str, region: Option<&str>) -> Result<String, NumberError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(NumberError::Empty);
    }
    if raw.chars().count() > MAX_INPUT {
        return Err(NumberError::TooLong);
    }
    if !raw
        .chars()
        .all(|c| c.is_ascii_digit() || " +()-./".contains(c))
    {
        return Err(NumberError::BadCharacters);
    }
    let region = match region.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => Some(
            r.to_ascii_uppercase()
                .parse::<country::Id>()
                .map_err(|_| NumberError::UnknownRegion(r.to_owned()))?,
        ),
        None => None,
    };
    if region.is_none() && !raw.starts_with('+') {
        return Err(NumberError::NeedsRegion);
    }
    let parsed = phonenumber::parse(region, raw).map_err(|e| match e {
        ParseError::TooLong => NumberError::TooLong,
        other => NumberError::Unparseable(other.to_string()),
    })?;
    let e164 = parsed.format().mode(Mode::E164).to_string();
    if !parsed.is_valid() {
        return Err(NumberError::Invalid(e164));
    }
    Ok(e164)
}

#[derive(Debug, Clone)]
pub enum PhoneCommand {
    Report {
        report_id: Uuid,
        category: Category,
        description: Option<String>,
        reporter_ip: Option<String>,
        at: DateTime<Utc>,
    },
    /// The evidence of an analysed call from this number judged a scam: a pending report, once
    /// per task (its id is derived from the task's), for moderators to approve or reject.
    FileCallEvidence {
        task_id: Uuid,
        description: String,
        at: DateTime<Utc>,
    },
    Approve {
        report_id: Uuid,
        moderator: String,
    },
    Reject {
        report_id: Uuid,
        moderator: String,
    },
    Delete {
        report_id: Uuid,
        moderator: String,
    },
    /// The number's owner disputes its listing.
    Dispute {
        dispute_id: Uuid,
        text: String,
        email: Option<String>,
    },
    DecideDispute {
        dispute_id: Uuid,
        outcome: AppealOutcome,
        moderator: String,
        note: Option<String>,
    },
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum PhoneError {
    /// 404
    #[error("no such report")]
    UnknownReport,
    /// 409
    #[error("this report was already {0}")]
    AlreadyDecided(&'static str),
    /// 409
    #[error("this number is not listed as dangerous")]
    NotListed,
    /// 409
    #[error("a dispute of this listing is open or was already decided")]
    AlreadyDisputed,
    /// 404
    #[error("no such dispute")]
    UnknownDispute,
    /// 409
    #[error("this dispute was already decided")]
    DisputeDecided,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum ReportStatus {
    Pending,
    Approved,
    Rejected,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PhoneNumber {
    reports: HashMap<Uuid, ReportStatus>,
    /// The latest dispute and whether it is decided.
    dispute: Option<(Uuid, bool)>,
    /// A report was approved since the latest dispute was filed (a new listing to dispute).
    approved_since_dispute: bool,
    /// When each IP last had a counted report of this number.
    counted_at: HashMap<String, DateTime<Utc>>,
}

/// The report id of a task's call evidence (UUIDv5 of the task id): filing it twice is a no-op.
pub fn evidence_report_id(task_id: Uuid) -> Uuid {
    Uuid::new_v5(&task_id, b"call-evidence")
}

impl PhoneNumber {
    /// Listed as dangerous: a moderator approved at least one report.
    pub fn listed(&self) -> bool {
        self.reports.values().any(|s| *s == ReportStatus::Approved)
    }
}

/// Repeats from one IP inside this window count once.
pub const REPEAT_WINDOW_HOURS: i64 = 24;

impl Aggregate for PhoneNumber {
    const TYPE: &'static str = events::phone_number::AGGREGATE_TYPE;
    type Command = PhoneCommand;
    type Event = PhoneNumberEvent;
    type Error = PhoneError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let decide = |report_id: &Uuid| match self.reports.get(report_id) {
            None => Err(PhoneError::UnknownReport),
            Some(ReportStatus::Approved) => Err(PhoneError::AlreadyDecided("approved")),
            Some(ReportStatus::Rejected) => Err(PhoneError::AlreadyDecided("rejected")),
            Some(ReportStatus::Pending) => Ok(()),
        };
        let event = match command {
            PhoneCommand::Report {
                report_id,
                category,
                description,
                reporter_ip,
                at,
            } => {
                let counted = reporter_ip.as_ref().is_none_or(|ip| {
                    self.counted_at
                        .get(ip)
                        .is_none_or(|last| at - *last >= Duration::hours(REPEAT_WINDOW_HOURS))
                });
                PhoneNumberEvent::PhoneReported {
                    report_id,
                    category,
                    description,
                    reporter_ip,
                    counted,
                    reported_at: at,
                    task_id: None,
                }
            }
            PhoneCommand::FileCallEvidence {
                task_id,
                description,
                at,
            } => {
                let report_id = evidence_report_id(task_id);
                if self.reports.contains_key(&report_id) {
                    return Ok(());
                }
                PhoneNumberEvent::PhoneReported {
                    report_id,
                    category: Category::Scam,
                    description: Some(description),
                    reporter_ip: None,
                    counted: true,
                    reported_at: at,
                    task_id: Some(task_id),
                }
            }
            PhoneCommand::Approve {
                report_id,
                moderator,
            } => {
                decide(&report_id)?;
                PhoneNumberEvent::PhoneReportApproved {
                    report_id,
                    moderator,
                }
            }
            PhoneCommand::Reject {
                report_id,
                moderator,
            } => {
                decide(&report_id)?;
                PhoneNumberEvent::PhoneReportRejected {
                    report_id,
                    moderator,
                }
            }
            PhoneCommand::Delete {
                report_id,
                moderator,
            } => {
                if !self.reports.contains_key(&report_id) {
                    return Err(PhoneError::UnknownReport);
                }
                PhoneNumberEvent::PhoneReportDeleted {
                    report_id,
                    moderator,
                }
            }
            PhoneCommand::Dispute {
                dispute_id,
                text,
                email,
            } => {
                if !self.listed() {
                    return Err(PhoneError::NotListed);
                }
                match self.dispute {
                    Some((_, false)) => return Err(PhoneError::AlreadyDisputed),
                    Some((_, true)) if !self.approved_since_dispute => {
                        return Err(PhoneError::AlreadyDisputed)
                    }
                    _ => {}
                }
                PhoneNumberEvent::NumberDisputed {
                    dispute_id,
                    text,
                    email,
                }
            }
            PhoneCommand::DecideDispute {
                dispute_id,
                outcome,
                moderator,
                note,
            } => {
                match self.dispute {
                    Some((id, false)) if id == dispute_id => {}
                    Some((id, true)) if id == dispute_id => return Err(PhoneError::DisputeDecided),
                    _ => return Err(PhoneError::UnknownDispute),
                }
                let mut cleared: Vec<Uuid> = match outcome {
                    AppealOutcome::Upheld => Vec::new(),
                    AppealOutcome::Overturned => self
                        .reports
                        .iter()
                        .filter(|(_, status)| **status == ReportStatus::Approved)
                        .map(|(id, _)| *id)
                        .collect(),
                };
                cleared.sort();
                PhoneNumberEvent::DisputeDecided {
                    dispute_id,
                    outcome,
                    moderator,
                    note,
                    cleared,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            PhoneNumberEvent::PhoneReported {
                report_id,
                reporter_ip,
                counted,
                reported_at,
                ..
            } => {
                self.reports.insert(report_id, ReportStatus::Pending);
                if let (true, Some(ip)) = (counted, reporter_ip) {
                    self.counted_at.insert(ip, reported_at);
                }
            }
            PhoneNumberEvent::PhoneReportApproved { report_id, .. } => {
                self.reports.insert(report_id, ReportStatus::Approved);
                self.approved_since_dispute = true;
            }
            PhoneNumberEvent::PhoneReportRejected { report_id, .. } => {
                self.reports.insert(report_id, ReportStatus::Rejected);
            }
            PhoneNumberEvent::PhoneReportDeleted { report_id, .. } => {
                self.reports.remove(&report_id);
            }
            PhoneNumberEvent::NumberDisputed { dispute_id, .. } => {
                self.dispute = Some((dispute_id, false));
                self.approved_since_dispute = false;
            }
            PhoneNumberEvent::DisputeDecided {
                dispute_id,
                cleared,
                ..
            } => {
                self.dispute = Some((dispute_id, true));
                for id in cleared {
                    self.reports.insert(id, ReportStatus::Rejected);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    #[test]
    fn every_spelling_lands_on_one_e164() {
        for (raw, region) in [
            ("+1 (415) 555-0100", None),
            ("+14155550100", None),
            ("(415) 555-0100", Some("US")),
            ("415.555.0100", Some("us")),
        ] {
            assert_eq!(
                normalize(raw, region).as_deref(),
                Ok("+14155550100"),
                "{raw}"
            );
        }
        assert_eq!(
            normalize("004930901820", Some("CH")).as_deref(),
            Ok("+4930901820")
        );
    }

    #[test]
    fn invalid_or_impossible_numbers_say_why() {
        assert_eq!(normalize("", None), Err(NumberError::Empty));
        assert_eq!(
            normalize("1-800-FLOWERS", Some("US")),
            Err(NumberError::BadCharacters)
        );
        assert_eq!(
            normalize(&"1".repeat(40), Some("US")),
            Err(NumberError::TooLong)
        );
        assert_eq!(normalize("4155550100", None), Err(NumberError::NeedsRegion));
        assert!(matches!(
            normalize("4155550100", Some("XX")),
            Err(NumberError::UnknownRegion(_))
        ));
        assert!(matches!(
            normalize("+1 415 555", None),
            Err(NumberError::Invalid(_) | NumberError::Unparseable(_))
        ));
        assert!(matches!(
            normalize("+999 1234567", None),
            Err(NumberError::Unparseable(_) | NumberError::Invalid(_))
        ));
    }

    type Given = TestFramework<PhoneNumber>;

    fn at(h: i64) -> DateTime<Utc> {
        "2026-11-21T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::hours(h)
    }

    fn report(n: u128, ip: &str, h: i64) -> PhoneCommand {
        PhoneCommand::Report {
            report_id: Uuid::from_u128(n),
            category: Category::Scam,
            description: None,
            reporter_ip: Some(ip.into()),
            at: at(h),
        }
    }

    fn reported(n: u128, ip: &str, h: i64, counted: bool) -> PhoneNumberEvent {
        PhoneNumberEvent::PhoneReported {
            report_id: Uuid::from_u128(n),
            category: Category::Scam,
            description: None,
            reporter_ip: Some(ip.into()),
            counted,
            reported_at: at(h),
            task_id: None,
        }
    }

    #[test]
    fn a_flagged_call_files_evidence_once_and_it_waits_for_a_moderator() {
        let task = Uuid::from_u128(9);
        let file = PhoneCommand::FileCallEvidence {
            task_id: task,
            description: "flagged".into(),
            at: at(0),
        };
        let filed = PhoneNumberEvent::PhoneReported {
            report_id: evidence_report_id(task),
            category: Category::Scam,
            description: Some("flagged".into()),
            reporter_ip: None,
            counted: true,
            reported_at: at(0),
            task_id: Some(task),
        };
        Given::with(())
            .given_no_previous_events()
            .when(file.clone())
            .then_expect_events(vec![filed.clone()]);
        // Again (a redelivered event): nothing new.
        Given::with(())
            .given(vec![filed.clone()])
            .when(file)
            .then_expect_events(vec![]);
        // A moderator decides it like any report.
        Given::with(())
            .given(vec![filed])
            .when(PhoneCommand::Approve {
                report_id: evidence_report_id(task),
                moderator: "admin".into(),
            })
            .then_expect_events(vec![PhoneNumberEvent::PhoneReportApproved {
                report_id: evidence_report_id(task),
                moderator: "admin".into(),
            }]);
    }

    #[test]
    fn one_ip_counts_once_per_day_but_every_report_is_recorded() {
        Given::with(())
            .given(vec![reported(1, "1.1.1.1", 0, true)])
            .when(report(2, "1.1.1.1", 23))
            .then_expect_events(vec![reported(2, "1.1.1.1", 23, false)]);
        Given::with(())
            .given(vec![reported(1, "1.1.1.1", 0, true)])
            .when(report(2, "2.2.2.2", 1))
            .then_expect_events(vec![reported(2, "2.2.2.2", 1, true)]);
        Given::with(())
            .given(vec![
                reported(1, "1.1.1.1", 0, true),
                reported(2, "1.1.1.1", 10, false),
            ])
            .when(report(3, "1.1.1.1", 24))
            .then_expect_events(vec![reported(3, "1.1.1.1", 24, true)]);
    }

    #[test]
    fn a_report_is_decided_once() {
        let id = Uuid::from_u128(1);
        let approve = PhoneCommand::Approve {
            report_id: id,
            moderator: "admin".into(),
        };
        let approved = PhoneNumberEvent::PhoneReportApproved {
            report_id: id,
            moderator: "admin".into(),
        };
        Given::with(())
            .given(vec![reported(1, "1.1.1.1", 0, true)])
            .when(approve.clone())
            .then_expect_events(vec![approved.clone()]);
        Given::with(())
            .given(vec![reported(1, "1.1.1.1", 0, true), approved])
            .when(approve.clone())
            .then_expect_error(PhoneError::AlreadyDecided("approved"));
        Given::with(())
            .given_no_previous_events()
            .when(approve)
            .then_expect_error(PhoneError::UnknownReport);
    }

    #[test]
    fn a_deleted_report_is_gone() {
        let id = Uuid::from_u128(1);
        let deleted = PhoneNumberEvent::PhoneReportDeleted {
            report_id: id,
            moderator: "admin".into(),
        };
        Given::with(())
            .given(vec![reported(1, "1.1.1.1", 0, true)])
            .when(PhoneCommand::Delete {
                report_id: id,
                moderator: "admin".into(),
            })
            .then_expect_events(vec![deleted.clone()]);
        Given::with(())
            .given(vec![reported(1, "1.1.1.1", 0, true), deleted])
            .when(PhoneCommand::Reject {
                report_id: id,
                moderator: "admin".into(),
            })
            .then_expect_error(PhoneError::UnknownReport);
    }

    fn approved(n: u128) -> PhoneNumberEvent {
        PhoneNumberEvent::PhoneReportApproved {
            report_id: Uuid::from_u128(n),
            moderator: "mod".into(),
        }
    }

    fn dispute(n: u128) -> PhoneCommand {
        PhoneCommand::Dispute {
            dispute_id: Uuid::from_u128(n),
            text: "This is my bakery's number".into(),
            email: None,
        }
    }

    fn disputed(n: u128) -> PhoneNumberEvent {
        PhoneNumberEvent::NumberDisputed {
            dispute_id: Uuid::from_u128(n),
            text: "This is my bakery's number".into(),
            email: None,
        }
    }

    fn decide(n: u128, outcome: AppealOutcome) -> PhoneCommand {
        PhoneCommand::DecideDispute {
            dispute_id: Uuid::from_u128(n),
            outcome,
            moderator: "mod".into(),
            note: None,
        }
    }

    fn decided(n: u128, outcome: AppealOutcome, cleared: &[u128]) -> PhoneNumberEvent {
        PhoneNumberEvent::DisputeDecided {
            dispute_id: Uuid::from_u128(n),
            outcome,
            moderator: "mod".into(),
            note: None,
            cleared: cleared.iter().map(|n| Uuid::from_u128(*n)).collect(),
        }
    }

    #[test]
    fn only_a_listed_number_is_disputed_and_one_dispute_is_open_at_a_time() {
        Given::with(())
            .given(vec![reported(1, "1.1.1.1", 0, true)])
            .when(dispute(9))
            .then_expect_error(PhoneError::NotListed);
        let listed = vec![reported(1, "1.1.1.1", 0, true), approved(1)];
        Given::with(())
            .given(listed.clone())
            .when(dispute(9))
            .then_expect_events(vec![disputed(9)]);
        let mut open = listed.clone();
        open.push(disputed(9));
        Given::with(())
            .given(open.clone())
            .when(dispute(10))
            .then_expect_error(PhoneError::AlreadyDisputed);
        // Upheld: not again, until a new report is approved.
        let mut upheld = open;
        upheld.push(decided(9, AppealOutcome::Upheld, &[]));
        Given::with(())
            .given(upheld.clone())
            .when(dispute(10))
            .then_expect_error(PhoneError::AlreadyDisputed);
        Given::with(())
            .given(upheld.clone())
            .when(decide(9, AppealOutcome::Overturned))
            .then_expect_error(PhoneError::DisputeDecided);
        upheld.extend([reported(2, "2.2.2.2", 0, true), approved(2)]);
        Given::with(())
            .given(upheld)
            .when(dispute(10))
            .then_expect_events(vec![disputed(10)]);
    }

    #[test]
    fn an_overturned_dispute_clears_every_approved_report() {
        let history = vec![
            reported(1, "1.1.1.1", 0, true),
            reported(2, "2.2.2.2", 0, true),
            reported(3, "3.3.3.3", 0, true),
            approved(1),
            approved(2),
            disputed(9),
        ];
        Given::with(())
            .given(history.clone())
            .when(decide(9, AppealOutcome::Overturned))
            .then_expect_events(vec![decided(9, AppealOutcome::Overturned, &[1, 2])]);
        Given::with(())
            .given(history.clone())
            .when(decide(8, AppealOutcome::Upheld))
            .then_expect_error(PhoneError::UnknownDispute);
        let mut cleared = history;
        cleared.push(decided(9, AppealOutcome::Overturned, &[1, 2]));
        // No longer listed: nothing to dispute; the pending report can still be decided.
        Given::with(())
            .given(cleared.clone())
            .when(dispute(10))
            .then_expect_error(PhoneError::NotListed);
        Given::with(())
            .given(cleared)
            .when(PhoneCommand::Approve {
                report_id: Uuid::from_u128(3),
                moderator: "mod".into(),
            })
            .then_expect_events(vec![approved(3)]);
    }
}
