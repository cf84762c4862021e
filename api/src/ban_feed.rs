//! The ban feed host platforms follow: every decision on a platform user (an automatic ban, a
//! review) read from the event log, each with its position in `EVENTS` as the cursor. A cursor
//! survives api restarts and failovers (it is the stream's own sequence), so a platform that
//! resumes after one misses nothing and sees nothing twice.
//!
//! ```text
//!  EVENTS ev.platform_user.*.UserAutoBanned|BanReviewed ─ordered consumer from cursor+1─►
//!      GET /platform/bans?since=  (a page)      GET /platform/bans/stream (SSE, id = cursor)
//! ```

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use events::platform_user::{AppealOutcome, PlatformUserEvent, ReviewDecision, UPCASTERS};
use events::Envelope;
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// The decisions a platform hears of.
pub const KINDS: [&str; 4] = [
    "UserAutoBanned",
    "BanReviewed",
    "AppealDecided",
    "IpBansLifted",
];

/// Subject filters of the decisions on `EVENTS`.
pub fn filters() -> Vec<String> {
    KINDS
        .iter()
        .map(|kind| {
            format!(
                "{}.{}.*.{kind}",
                events::subject::PREFIX,
                events::platform_user::AGGREGATE_TYPE
            )
        })
        .collect()
}

/// One decision on a platform user.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BanDecision {
    /// Its position in the event log: resume after it with `since=` or `Last-Event-ID`.
    #[schema(example = "1042")]
    pub cursor: String,
    /// `UserAutoBanned` (the report threshold was reached), `BanReviewed` (an admin decided a
    /// pending ban, or lifted one on appeal), `AppealDecided` (the user's appeal was upheld or
    /// overturned) or `IpBansLifted` (after a vindication: `ips` are unbanned, `ipsKept` stay
    /// banned because another banned user holds them).
    #[schema(example = "UserAutoBanned")]
    pub kind: &'static str,
    /// The platform user (the `sub` of the host's session token).
    pub user_id: String,
    /// `temporary` (banned, review pending), `permanent` (on the public blacklist) or
    /// `vindicated` (the ban is lifted).
    #[schema(value_type = crate::http::openapi::BanStatus)]
    pub ban_status: &'static str,
    /// Every IP address seen for the user: banned with a `temporary` or `permanent` ban; on
    /// `vindicated`, lifted except where another banned user shares one (`GET
    /// /report/check-ban` and the IP-ban check stay authoritative).
    pub ips: Vec<String>,
    /// Why (automatic bans).
    pub reason: Option<String>,
    /// Unique reporters when the ban began (automatic bans).
    pub report_count: Option<u32>,
    /// When the ban began, milliseconds since the Unix epoch.
    pub banned_at: i64,
    /// When this decision was taken, milliseconds since the Unix epoch.
    pub decided_at: i64,
    /// `IpBansLifted`: the user's IPs that stay banned (another banned user holds them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ips_kept: Vec<String>,
    /// `AppealDecided`: the appeal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appeal_id: Option<uuid::Uuid>,
    /// `AppealDecided`: `upheld` (the ban stays) or `overturned` (lifted; `BanReviewed` and
    /// `IpBansLifted` follow).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<events::platform_user::AppealOutcome>)]
    pub appeal_outcome: Option<&'static str>,
}

/// The decision an event on `EVENTS` stands for (`None`: not a decision, or unreadable).
pub fn decision_of(stream_sequence: u64, payload: &[u8]) -> Option<BanDecision> {
    let env = Envelope::from_bytes(payload).ok()?;
    if env.aggregate_type != events::platform_user::AGGREGATE_TYPE {
        return None;
    }
    let decided_at = env.occurred_at.timestamp_millis();
    let mut decision = BanDecision {
        cursor: stream_sequence.to_string(),
        kind: "",
        user_id: env.aggregate_id.clone(),
        ban_status: "vindicated",
        ips: Vec::new(),
        reason: None,
        report_count: None,
        banned_at: 0,
        decided_at,
        ips_kept: Vec::new(),
        appeal_id: None,
        appeal_outcome: None,
    };
    let banned_at = match env.decode::<PlatformUserEvent>(UPCASTERS).ok()? {
        PlatformUserEvent::UserAutoBanned {
            reason,
            report_count,
            ips,
            banned_at,
        } => {
            decision.kind = "UserAutoBanned";
            decision.ban_status = "temporary";
            decision.ips = ips;
            decision.reason = Some(reason);
            decision.report_count = Some(report_count);
            banned_at
        }
        PlatformUserEvent::BanReviewed {
            decision: review,
            ips,
            banned_at,
            ..
        } => {
            decision.kind = "BanReviewed";
            decision.ban_status = match review {
                ReviewDecision::Permanent => "permanent",
                ReviewDecision::Vindicated => "vindicated",
            };
            decision.ips = ips;
            banned_at
        }
        PlatformUserEvent::AppealDecided {
            appeal_id,
            outcome,
            permanent,
            banned_at,
            ..
        } => {
            decision.kind = "AppealDecided";
            decision.ban_status = match (outcome, permanent) {
                (AppealOutcome::Overturned, _) => "vindicated",
                (AppealOutcome::Upheld, true) => "permanent",
                (AppealOutcome::Upheld, false) => "temporary",
            };
            decision.appeal_id = Some(appeal_id);
            decision.appeal_outcome = Some(outcome.as_str());
            banned_at
        }
        PlatformUserEvent::IpBansLifted {
            lifted,
            kept,
            banned_at,
        } => {
            decision.kind = "IpBansLifted";
            decision.ips = lifted;
            decision.ips_kept = kept;
            banned_at
        }
        _ => return None,
    };
    decision.banned_at = banned_at.timestamp_millis();
    Some(decision)
}

/// Longest cursor accepted (a `u64` in decimal).
const MAX_CURSOR_LEN: usize = 20;

/// A cursor as a client sent it: decimal digits of a stream sequence.
pub fn parse_cursor(raw: &str) -> Result<u64, ApiError> {
    let raw = raw.trim();
    let bad = || {
        ApiError::BadRequest(
            "the cursor is not one this API issued (a decimal event position)".into(),
        )
    };
    if raw.is_empty() || raw.len() > MAX_CURSOR_LEN || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    raw.parse().map_err(|_| bad())
}

/// Where the event log ends now; a cursor past it is refused (400).
async fn checked_end(
    js: &jetstream::Context,
    since: u64,
) -> Result<(jetstream::stream::Stream, u64), ApiError> {
    let mut stream = js
        .get_stream(events::topology::EVENTS_STREAM)
        .await
        .map_err(|_| ApiError::Unavailable("nats"))?;
    let last = stream
        .info()
        .await
        .map_err(|_| ApiError::Unavailable("nats"))?
        .state
        .last_sequence;
    if since > last {
        return Err(ApiError::BadRequest(format!(
            "the cursor {since} is ahead of the event log (at {last})"
        )));
    }
    Ok((stream, last))
}

/// Where the event log ends now (a cursor: decisions after it are still to come).
pub async fn end(js: &jetstream::Context) -> Result<u64, ApiError> {
    Ok(checked_end(js, 0).await?.1)
}

/// An ordered consumer of the decisions after `since`.
async fn decisions_after(
    stream: &jetstream::stream::Stream,
    since: u64,
) -> Result<jetstream::consumer::Consumer<OrderedConfig>, ApiError> {
    stream
        .create_consumer(OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: since + 1,
            },
            filter_subjects: filters(),
            ..Default::default()
        })
        .await
        .map_err(|_| ApiError::Unavailable("nats"))
}

/// At most `limit` decisions after `since`, and the cursor to ask from next. When the page
/// reaches the end of the log the next cursor is the log's end, so a poller does not scan the
/// same stretch again.
pub async fn page(
    js: &jetstream::Context,
    since: u64,
    limit: usize,
) -> Result<(Vec<BanDecision>, u64), ApiError> {
    let (stream, end) = checked_end(js, since).await?;
    let mut consumer = decisions_after(&stream, since).await?;
    let pending = consumer
        .info()
        .await
        .map_err(|_| ApiError::Unavailable("nats"))?
        .num_pending;
    if pending == 0 {
        return Ok((Vec::new(), end.max(since)));
    }
    let mut messages = consumer
        .messages()
        .await
        .map_err(|_| ApiError::Unavailable("nats"))?;
    let (mut items, mut next) = (Vec::new(), since);
    while items.len() < limit {
        let msg = match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
            Ok(Some(Ok(msg))) => msg,
            Ok(Some(Err(_))) | Ok(None) | Err(_) => {
                return Err(ApiError::Unavailable("nats"));
            }
        };
        let info = msg.info().map_err(|_| ApiError::Unavailable("nats"))?;
        let (seq, left) = (info.stream_sequence, info.pending);
        next = seq;
        if let Some(decision) = decision_of(seq, &msg.payload) {
            items.push(decision);
        }
        if left == 0 {
            next = next.max(end);
            break;
        }
    }
    Ok((items, next))
}

/// The decisions after `since` as they happen, for as long as the caller reads; first, where the
/// log ends now (a cursor to resume from even before any decision).
pub async fn follow(
    js: &jetstream::Context,
    since: Option<u64>,
) -> Result<(u64, impl futures::Stream<Item = BanDecision>), ApiError> {
    let (stream, end) = checked_end(js, since.unwrap_or(0)).await?;
    let from = since.unwrap_or(end);
    let consumer = decisions_after(&stream, from).await?;
    let messages = consumer
        .messages()
        .await
        .map_err(|_| ApiError::Unavailable("nats"))?;
    let decisions = messages
        .take_while(|m| std::future::ready(m.is_ok()))
        .filter_map(|m| {
            std::future::ready(m.ok().and_then(|msg| {
                let seq = msg.info().ok()?.stream_sequence;
                decision_of(seq, &msg.payload)
            }))
        });
    Ok((from, decisions))
}

/// Open ban streams per platform on this instance, at most [`STREAMS_PER_PLATFORM`] each.
#[derive(Default)]
pub struct OpenStreams(std::sync::Mutex<std::collections::HashMap<uuid::Uuid, usize>>);

/// How many ban streams one platform may hold open on one instance.
pub const STREAMS_PER_PLATFORM: usize = 8;

/// A held stream slot; given back when dropped.
pub struct StreamSlot {
    streams: std::sync::Arc<OpenStreams>,
    platform: uuid::Uuid,
}

impl OpenStreams {
    /// A slot for another stream of `platform`, or `None` when it holds the most already.
    pub fn open(self: &std::sync::Arc<Self>, platform: uuid::Uuid) -> Option<StreamSlot> {
        let mut open = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let held = open.entry(platform).or_default();
        if *held >= STREAMS_PER_PLATFORM {
            return None;
        }
        *held += 1;
        Some(StreamSlot {
            streams: self.clone(),
            platform,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .streams
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(held) = open.get_mut(&self.platform) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                open.remove(&self.platform);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_platform_holds_a_bounded_number_of_streams_and_gets_them_back() {
        let streams = std::sync::Arc::new(OpenStreams::default());
        let (a, b) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let held: Vec<StreamSlot> = (0..STREAMS_PER_PLATFORM)
            .map(|_| streams.open(a).expect("a slot"))
            .collect();
        assert!(streams.open(a).is_none(), "over the cap");
        assert!(streams.open(b).is_some(), "per platform");
        drop(held);
        assert!(streams.open(a).is_some(), "slots come back");
        assert!(streams.0.lock().unwrap().get(&a).is_none_or(|n| *n <= 1));
    }

    use super::*;

    #[test]
    fn a_cursor_is_decimal_digits_and_nothing_else() {
        assert_eq!(parse_cursor("0").unwrap(), 0);
        assert_eq!(parse_cursor(" 1042 ").unwrap(), 1042);
        for bad in [
            "",
            "-1",
            "1e3",
            "abc",
            "12345678901234567890123",
            "99999999999999999999",
        ] {
            assert!(parse_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_decisions_on_platform_users_make_the_feed() {
        let envelope = |aggregate: &str, event: &str, payload: serde_json::Value| {
            serde_json::to_vec(&serde_json::json!({
                "eventId": uuid::Uuid::new_v4(), "aggregateType": aggregate, "aggregateId": "u1",
                "sequence": 5, "occurredAt": "2026-11-30T10:00:00Z", "eventType": event,
                "schemaVersion": "1", "payload": payload,
            }))
            .unwrap()
        };
        let banned = envelope(
            "platform_user",
            "UserAutoBanned",
            serde_json::json!({"reason": "4 reports", "reportCount": 4, "ips": ["192.0.2.1"],
                               "bannedAt": "2026-11-30T10:00:00Z"}),
        );
        let d = decision_of(7, &banned).expect("a decision");
        assert_eq!(
            (d.cursor.as_str(), d.kind, d.ban_status),
            ("7", "UserAutoBanned", "temporary")
        );
        assert_eq!(
            (d.user_id.as_str(), d.report_count, d.ips.len()),
            ("u1", Some(4), 1)
        );
        let reviewed = envelope(
            "platform_user",
            "BanReviewed",
            serde_json::json!({"decision": "vindicated", "reviewer": "admin", "ips": [],
                               "bannedAt": "2026-11-30T09:00:00Z"}),
        );
        assert_eq!(decision_of(8, &reviewed).unwrap().ban_status, "vindicated");
        let upheld = envelope(
            "platform_user",
            "AppealDecided",
            serde_json::json!({"appealId": uuid::Uuid::nil(), "outcome": "upheld",
                               "decidedBy": "admin", "note": null, "permanent": true,
                               "bannedAt": "2026-11-30T09:00:00Z"}),
        );
        let d = decision_of(11, &upheld).unwrap();
        assert_eq!(
            (d.kind, d.ban_status, d.appeal_outcome),
            ("AppealDecided", "permanent", Some("upheld"))
        );
        let lifted = envelope(
            "platform_user",
            "IpBansLifted",
            serde_json::json!({"lifted": ["192.0.2.1"], "kept": ["192.0.2.2"],
                               "bannedAt": "2026-11-30T09:00:00Z"}),
        );
        let d = decision_of(12, &lifted).unwrap();
        assert_eq!(
            (d.kind, d.ips, d.ips_kept),
            (
                "IpBansLifted",
                vec!["192.0.2.1".to_owned()],
                vec!["192.0.2.2".to_owned()]
            )
        );
        let report = envelope("platform_user", "ReportFiled", serde_json::json!({}));
        assert_eq!(decision_of(9, &report), None);
        assert_eq!(decision_of(10, b"garbage"), None);
    }
}
