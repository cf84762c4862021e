//! Signs of coordinated reporting against one user, shown on the admin review card: several
//! reports from one subnet, or a burst of reports within seconds. A flag is a hint for the
//! reviewer, not a decision: it changes no weight and bans nobody.

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Reports from one subnet that make a flag.
pub const SAME_SUBNET_REPORTS: usize = 2;
/// Reports within [`BURST_SECONDS`] that make a flag.
pub const BURST_REPORTS: usize = 3;
pub const BURST_SECONDS: i64 = 60;

/// One report as the flags see it.
pub struct Seen {
    pub report_id: Uuid,
    pub reporter_ip: Option<IpAddr>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CoordinationFlag {
    /// `same_subnet` (reporters behind one IPv4 /24 or IPv6 /64) or `burst` (3 or more reports
    /// within 60 seconds).
    #[schema(example = "same_subnet")]
    pub kind: &'static str,
    /// What was seen, for the reviewer.
    pub detail: String,
    /// The reports involved.
    pub report_ids: Vec<Uuid>,
}

fn subnet(ip: IpAddr) -> String {
    match common::net::canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        v6 => format!("{}/64", common::net::network(v6, 64)),
    }
}

/// The flags of a user's reports (any order).
pub fn flags(reports: &[Seen]) -> Vec<CoordinationFlag> {
    let mut out = Vec::new();
    let mut by_subnet: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    for r in reports {
        if let Some(ip) = r.reporter_ip {
            by_subnet.entry(subnet(ip)).or_default().push(r.report_id);
        }
    }
    for (net, ids) in by_subnet {
        if ids.len() >= SAME_SUBNET_REPORTS {
            out.push(CoordinationFlag {
                kind: "same_subnet",
                detail: format!("{} reports from {net}", ids.len()),
                report_ids: ids,
            });
        }
    }
    let mut timeline: Vec<&Seen> = reports.iter().collect();
    timeline.sort_by_key(|r| r.at);
    // The longest run of reports within the window (the first one found of that length).
    let (mut best, mut start) = ((0, 0), 0);
    for end in 0..timeline.len() {
        while (timeline[end].at - timeline[start].at).num_seconds() > BURST_SECONDS {
            start += 1;
        }
        if end + 1 - start > best.1 - best.0 {
            best = (start, end + 1);
        }
    }
    if best.1 - best.0 >= BURST_REPORTS {
        let run = &timeline[best.0..best.1];
        let span = (run[run.len() - 1].at - run[0].at).num_seconds();
        out.push(CoordinationFlag {
            kind: "burst",
            detail: format!("{} reports within {span} seconds", run.len()),
            report_ids: run.iter().map(|r| r.report_id).collect(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(n: u128, ip: &str, secs: i64) -> Seen {
        Seen {
            report_id: Uuid::from_u128(n),
            reporter_ip: ip.parse().ok(),
            at: DateTime::<Utc>::from_timestamp(1_800_000_000 + secs, 0).unwrap(),
        }
    }

    #[test]
    fn spread_out_reports_from_different_networks_raise_nothing() {
        let reports = [
            seen(1, "198.51.100.1", 0),
            seen(2, "203.0.113.1", 3600),
            seen(3, "2001:db8:1::1", 7200),
            seen(4, "2001:db8:2::1", 9000),
        ];
        assert_eq!(flags(&reports), vec![]);
    }

    #[test]
    fn reports_from_one_subnet_are_flagged() {
        let reports = [
            seen(1, "198.51.100.1", 0),
            seen(2, "198.51.100.200", 5000),
            seen(3, "2001:db8:1::1", 10_000),
            seen(4, "2001:db8:1::ffff", 20_000),
            seen(5, "::ffff:203.0.113.9", 30_000),
        ];
        let f = flags(&reports);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f.iter().all(|f| f.kind == "same_subnet"));
        assert!(f
            .iter()
            .any(|f| f.detail == "2 reports from 198.51.100.0/24"));
        assert!(f
            .iter()
            .any(|f| f.detail == "2 reports from 2001:db8:1::/64"));
    }

    #[test]
    fn a_burst_within_a_minute_is_flagged_with_its_reports() {
        let reports = [
            seen(1, "198.51.100.1", 0),
            seen(2, "203.0.113.1", 1000),
            seen(3, "192.0.2.1", 1010),
            seen(4, "2001:db8:9::1", 1050),
            seen(5, "2001:db8:8::1", 2000),
        ];
        let f = flags(&reports);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, "burst");
        assert_eq!(f[0].detail, "3 reports within 50 seconds");
        assert_eq!(
            f[0].report_ids,
            vec![Uuid::from_u128(2), Uuid::from_u128(3), Uuid::from_u128(4)]
        );
    }
}
