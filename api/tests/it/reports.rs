//! User reports and bans, end to end — the seed's checklist and the hard cases.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{config, session_token, session_token_with, start_api, Stack, SESSION_SECRET};

/// A host-platform user who always comes through the trusted proxy from `ip`.
#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    pub token: String,
    ip: String,
}

impl User {
    pub fn new(name: &str, ip: &str) -> User {
        let id = Uuid::new_v4();
        User {
            id,
            token: session_token(id, name),
            ip: ip.into(),
        }
    }

    pub fn ip(&self) -> &str {
        &self.ip
    }

    /// The same user (and token) coming from another address.
    pub fn from(&self, ip: &str) -> User {
        User {
            ip: ip.into(),
            ..self.clone()
        }
    }
}

async fn report(
    s: &Stack,
    base: &str,
    by: &User,
    target: Uuid,
    reason: Option<&str>,
) -> reqwest::Response {
    s.http
        .post(format!("{base}/api/v1/report/user"))
        .bearer_auth(&by.token)
        .header("x-forwarded-for", &by.ip)
        .json(&json!({"reportedUserId": target, "reason": reason, "roomId": Uuid::new_v4()}))
        .send()
        .await
        .unwrap()
}

pub async fn check_ban(s: &Stack, u: &User) -> Value {
    let r = s
        .http
        .get(s.url("/api/v1/report/check-ban"))
        .bearer_auth(&u.token)
        .header("x-forwarded-for", &u.ip)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Any endpoint a banned IP may not reach: status of a request from `ip`.
pub async fn status_from(s: &Stack, base: &str, ip: &str) -> StatusCode {
    s.http
        .post(format!("{base}/api/v1/report/user"))
        .header("x-forwarded-for", ip)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .status()
}

pub async fn wait_refused(s: &Stack, base: &str, ip: &str, within: Duration) -> bool {
    testkit::eventually(within, || async {
        (status_from(s, base, ip).await == StatusCode::FORBIDDEN).then_some(())
    })
    .await
    .is_some()
}

/// Makes `target` known from its IP, then has four reporters ban it.
pub async fn ban(s: &Stack, target: &User) {
    assert_eq!(check_ban(s, target).await["isBanned"], false);
    for i in 0..4 {
        let reporter = User::new(&format!("reporter {i}"), &format!("192.0.2.{}", 10 + i));
        let r = report(s, &s.api.base, &reporter, target.id, Some("rude on camera")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
}

pub async fn admin_token(s: &Stack) -> String {
    let password = s.seed().await;
    s.token(&password).await
}

pub async fn review(s: &Stack, token: &str, user: Uuid, decision: &str) -> reqwest::Response {
    s.http
        .post(s.url(&format!("/api/v1/report/review/{user}")))
        .bearer_auth(token)
        .json(&json!({"decision": decision}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_report_after_a_call_counts_once_per_pair_and_bad_input_writes_nothing() {
    let s = Stack::start().await;
    let alice = User::new("Alice", "198.51.100.1");
    let bob = User::new("Bob", "198.51.100.2");

    let r = report(&s, &s.api.base, &alice, bob.id, Some("spam links")).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["reportCount"], 1);
    assert_eq!(body["autoBanned"], false);
    assert!(Uuid::parse_str(body["reportId"].as_str().unwrap()).is_ok());

    let again = report(&s, &s.api.base, &alice, bob.id, None).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(
        again.json::<Value>().await.unwrap()["error"],
        "already_reported"
    );

    let send = |token: String, body: Value| {
        s.http
            .post(s.url("/api/v1/report/user"))
            .bearer_auth(token)
            .header("x-forwarded-for", "198.51.100.1")
            .json(&body)
            .send()
    };
    let t = alice.token.clone();
    let cases = vec![
        (
            send(t.clone(), json!({"reportedUserId": alice.id}))
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "self_report",
        ),
        (
            send(t.clone(), json!({})).await.unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_id",
        ),
        (
            send(t.clone(), json!({"reportedUserId": "bob"}))
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_id",
        ),
        (
            send(
                t.clone(),
                json!({"reportedUserId": bob.id, "roomId": "room-1"}),
            )
            .await
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_id",
        ),
        (
            send(
                t.clone(),
                json!({"reportedUserId": Uuid::new_v4(), "reason": "x".repeat(2001)}),
            )
            .await
            .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason_too_long",
        ),
        (
            send(t.clone(), json!({"reportedUserId": 42}))
                .await
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            send(
                session_token_with(alice.id, "Alice", -120, SESSION_SECRET),
                json!({"reportedUserId": Uuid::new_v4()}),
            )
            .await
            .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            send(
                session_token_with(alice.id, "Alice", 3600, "some-other-secret"),
                json!({"reportedUserId": Uuid::new_v4()}),
            )
            .await
            .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            send(
                unsigned(alice.id),
                json!({"reportedUserId": Uuid::new_v4()}),
            )
            .await
            .unwrap(),
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        ),
        (
            s.http
                .post(s.url("/api/v1/report/user"))
                .json(&json!({"reportedUserId": bob.id}))
                .send()
                .await
                .unwrap(),
            StatusCode::UNAUTHORIZED,
            "missing_token",
        ),
    ];
    for (i, (r, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(r.status(), status, "case {i}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code, "case {i}");
    }
    let reports: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'ReportFiled'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(reports, 1, "refused requests left no report behind");
}

/// `alg: none`: a token anyone can forge.
fn unsigned(user: Uuid) -> String {
    use base64::Engine;
    let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let exp = chrono::Utc::now().timestamp() + 3600;
    format!(
        "{}.{}.",
        enc(json!({"alg": "none", "typ": "JWT"})),
        enc(json!({"sub": user, "exp": exp}))
    )
}

#[tokio::test]
async fn four_unique_reporters_ban_the_user_and_every_ip_seen_for_them() {
    let s = Stack::start().await;
    let target = User::new("Mallory", "203.0.113.1");
    let second_ip = User {
        ip: "203.0.113.2".into(),
        ..target.clone()
    };
    check_ban(&s, &target).await;
    check_ban(&s, &second_ip).await;

    let mut counts = Vec::new();
    for i in 0..4 {
        let reporter = User::new(&format!("r{i}"), &format!("192.0.2.{}", 20 + i));
        let r = report(&s, &s.api.base, &reporter, target.id, Some("threats")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let b: Value = r.json().await.unwrap();
        counts.push((
            b["reportCount"].as_u64().unwrap(),
            b["autoBanned"].as_bool().unwrap(),
        ));
    }
    assert_eq!(counts, [(1, false), (2, false), (3, false), (4, true)]);

    for ip in ["203.0.113.1", "203.0.113.2"] {
        assert!(
            wait_refused(&s, &s.api.base, ip, Duration::from_secs(5)).await,
            "{ip} is not refused"
        );
        let r = s
            .http
            .get(s.url("/api/v1/report/nothing"))
            .header("x-forwarded-for", ip)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (body["error"].as_str(), body["banned"].as_bool()),
            (Some("access_denied"), Some(true))
        );
    }
    // Exempt: the public blacklist and the user's own ban check.
    let r = s
        .http
        .get(s.url("/api/v1/report/blacklist"))
        .header("x-forwarded-for", "203.0.113.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.projected().await;
    let ban = check_ban(&s, &target).await;
    assert_eq!(
        (ban["isBanned"].as_bool(), ban["banStatus"].as_str()),
        (Some(true), Some("temporary"))
    );
    assert_eq!(ban["banRecord"]["reviewStatus"], "pending");
    assert_eq!(ban["banRecord"]["reportCount"], 4);
    assert_eq!(ban["banRecord"]["userName"], "Mallory");

    // The banned user's own token cannot report anyone (from a clean address, too).
    let clean = User {
        ip: "198.51.100.99".into(),
        ..target.clone()
    };
    let r = report(&s, &s.api.base, &clean, Uuid::new_v4(), None).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "user_banned");

    let admin = admin_token(&s).await;
    let pending: Value = s
        .http
        .get(s.url("/api/v1/report/pending"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pending["count"], 1);
    let p = &pending["pending"][0];
    assert_eq!(p["userId"], target.id.to_string());
    assert_eq!(
        p["userSelfie"],
        format!("https://cdn.example/{}.jpg", target.id)
    );
    assert_eq!(
        p["userVideo"],
        format!("https://cdn.example/{}.webm", target.id)
    );
    assert_eq!(
        (p["banStatus"].as_str(), p["reviewStatus"].as_str()),
        (Some("temporary"), Some("pending"))
    );
    assert!(
        p["bannedAt"].as_i64().unwrap() > 1_700_000_000_000,
        "epoch milliseconds"
    );
    assert_eq!(p["reports"].as_array().unwrap().len(), 4);
    assert_eq!(p["reports"][0]["reason"], "threats");

    let stats: Value = s
        .http
        .get(s.url("/api/v1/report/stats"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["totalReports"], 4);
    assert_eq!(stats["totalBans"], 1);
    assert_eq!(stats["pendingReviews"], 1);
    assert_eq!(stats["temporaryBans"], 1);
    assert_eq!(stats["permanentBans"], 0);
    assert!(stats["banEvasionAttempts"].as_i64().unwrap() >= 2);

    let history: Value = s
        .http
        .get(s.url(&format!(
            "/api/v1/report/reports?userId={}&limit=3",
            target.id
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["reports"].as_array().unwrap().len(), 3);
    assert_eq!(history["reports"][0]["reportCount"], 4, "newest first");
    let next = history["nextCursor"].as_str().unwrap();
    let rest: Value = s
        .http
        .get(s.url(&format!(
            "/api/v1/report/reports?userId={}&limit=3&cursor={next}",
            target.id
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["reports"].as_array().unwrap().len(), 1);
    assert_eq!(rest["nextCursor"], Value::Null);

    // Admin endpoints need an admin.
    let r = s
        .http
        .get(s.url("/api/v1/report/stats"))
        .bearer_auth(&target.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_permanent_ban_puts_the_user_on_the_public_blacklist() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let target = User::new("<script>alert(1)</script> Eve", "203.0.113.30");
    let other = User::new("Trent", "203.0.113.31");
    ban(&s, &target).await;
    ban(&s, &other).await;
    s.projected().await;

    let r = review(&s, &admin, target.id, "maybe").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = review(&s, &admin, Uuid::new_v4(), "permanent").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s
        .http
        .post(s.url("/api/v1/report/review/not-a-uuid"))
        .bearer_auth(&admin)
        .json(&json!({"decision": "permanent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    for u in [&target, &other] {
        let r = review(&s, &admin, u.id, "permanent").await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (body["success"].as_bool(), body["decision"].as_str()),
            (Some(true), Some("permanent"))
        );
    }
    let again = review(&s, &admin, target.id, "vindicated").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    s.projected().await;

    let list: Value = s
        .http
        .get(s.url("/api/v1/report/blacklist"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["count"], 2);
    assert!(list["lastUpdated"].as_i64().unwrap() > 1_700_000_000_000);
    let entry = &list["blacklist"][0];
    for key in [
        "userName",
        "userSelfie",
        "userVideo",
        "bannedAt",
        "bannedReason",
        "reportCount",
    ] {
        assert!(entry.get(key).is_some(), "blacklist entry lacks {key}");
    }
    let found: Value = s
        .http
        .get(s.url("/api/v1/report/blacklist?q=eve"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["count"], 1);
    assert_eq!(
        found["blacklist"][0]["userName"], "<script>alert(1)</script> Eve",
        "stored as written; pages escape it"
    );
    let none: Value = s
        .http
        .get(s.url("/api/v1/report/blacklist?q=nobody%25"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none["count"], 0);

    let page1: Value = s
        .http
        .get(s.url("/api/v1/report/blacklist?limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = page1["nextCursor"].as_str().unwrap().to_owned();
    let page2: Value = s
        .http
        .get(s.url(&format!("/api/v1/report/blacklist?limit=1&cursor={cursor}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2["nextCursor"], Value::Null);
    assert_ne!(
        page1["blacklist"][0]["userName"],
        page2["blacklist"][0]["userName"]
    );
    let bad = s
        .http
        .get(s.url("/api/v1/report/blacklist?limit=0"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad = s
        .http
        .get(s.url("/api/v1/report/blacklist?cursor=garbage"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A permanent ban keeps the IP banned.
    assert_eq!(
        status_from(&s, &s.api.base, "203.0.113.30").await,
        StatusCode::FORBIDDEN
    );
    let ban = check_ban(&s, &target).await;
    assert_eq!(ban["banStatus"], "permanent");
}

#[tokio::test]
async fn vindication_unbans_ips_unless_another_banned_user_shares_them() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let (shared, own_b, own_c) = ("203.0.113.50", "203.0.113.51", "203.0.113.52");
    let b = User::new("Bea", own_b);
    let c = User::new("Cy", own_c);
    check_ban(
        &s,
        &User {
            ip: shared.into(),
            ..b.clone()
        },
    )
    .await;
    check_ban(
        &s,
        &User {
            ip: shared.into(),
            ..c.clone()
        },
    )
    .await;
    ban(&s, &b).await;
    ban(&s, &c).await;
    for ip in [shared, own_b, own_c] {
        assert!(
            wait_refused(&s, &s.api.base, ip, Duration::from_secs(5)).await,
            "{ip} not banned"
        );
    }
    s.projected().await;

    let r = review(&s, &admin, b.id, "vindicated").await;
    assert_eq!(r.status(), StatusCode::OK);
    let freed = testkit::eventually(Duration::from_secs(5), || async {
        (status_from(&s, &s.api.base, own_b).await != StatusCode::FORBIDDEN).then_some(())
    })
    .await;
    assert!(
        freed.is_some(),
        "the vindicated user's own IP is still banned"
    );
    assert_eq!(
        status_from(&s, &s.api.base, shared).await,
        StatusCode::FORBIDDEN,
        "shared with banned Cy"
    );
    assert_eq!(
        status_from(&s, &s.api.base, own_c).await,
        StatusCode::FORBIDDEN
    );
    s.projected().await;
    let ban = check_ban(
        &s,
        &User {
            ip: own_b.into(),
            ..b.clone()
        },
    )
    .await;
    assert_eq!(
        (ban["isBanned"].as_bool(), ban["banStatus"].as_str()),
        (Some(false), Some("vindicated"))
    );
    let stats: Value = s
        .http
        .get(s.url("/api/v1/report/stats"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["vindicated"], 1);
    assert_eq!(stats["vindicationRate"], 1.0);

    // Vindicating Cy frees the shared address as well.
    assert_eq!(
        review(&s, &admin, c.id, "vindicated").await.status(),
        StatusCode::OK
    );
    let freed = testkit::eventually(Duration::from_secs(5), || async {
        (status_from(&s, &s.api.base, shared).await != StatusCode::FORBIDDEN).then_some(())
    })
    .await;
    assert!(
        freed.is_some(),
        "the shared IP stayed banned after both were vindicated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_reporters_auto_ban_exactly_once() {
    let s = Stack::start().await;
    let target = User::new("Target", "203.0.113.70");
    check_ban(&s, &target).await;
    let reporters: Vec<User> = (0..50)
        .map(|i| User::new(&format!("r{i}"), &format!("192.0.2.{}", 100 + i)))
        .collect();
    let results = futures::future::join_all(
        reporters
            .iter()
            .map(|r| report(&s, &s.api.base, r, target.id, None)),
    )
    .await;
    let mut counts = BTreeSet::new();
    let mut bans = 0;
    for r in results {
        assert_eq!(r.status(), StatusCode::CREATED);
        let b: Value = r.json().await.unwrap();
        counts.insert(b["reportCount"].as_u64().unwrap());
        bans += b["autoBanned"].as_bool().unwrap() as u32;
    }
    assert_eq!(
        counts,
        (1..=50).collect(),
        "every response carries its own, distinct count"
    );
    assert_eq!(bans, 1);
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'UserAutoBanned'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(events, 1);
}

#[tokio::test]
async fn a_ban_through_one_instance_is_enforced_by_another_within_a_second() {
    let s = Stack::start().await;
    let other = start_api(config(&s.db.url, &s.nats)).await;
    s.wait_ready(&other.base).await;
    let target = User::new("Roamer", "203.0.113.90");
    check_ban(&s, &target).await;
    assert_eq!(
        status_from(&s, &other.base, "203.0.113.90").await,
        StatusCode::UNAUTHORIZED
    );
    for i in 0..4 {
        let r = report(
            &s,
            &s.api.base,
            &User::new("x", &format!("192.0.2.{}", 200 + i)),
            target.id,
            None,
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    let banned_at = Instant::now();
    assert!(
        wait_refused(&s, &other.base, "203.0.113.90", Duration::from_secs(1)).await,
        "not refused within 1 s"
    );
    eprintln!(
        "second instance refused the banned IP after {:?}",
        banned_at.elapsed()
    );
    other.stop().await;
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let s = Stack::start().await;
    let target = User::new("Proxied", "203.0.113.110");
    ban(&s, &target).await;
    assert!(wait_refused(&s, &s.api.base, "203.0.113.110", Duration::from_secs(5)).await);
    // An instance that trusts no proxy sees only the socket peer (127.0.0.1, not banned).
    let mut cfg = config(&s.db.url, &s.nats);
    cfg.trusted_proxies = "".parse().unwrap();
    let untrusting = start_api(cfg).await;
    s.wait_ready(&untrusting.base).await;
    assert_eq!(
        status_from(&s, &untrusting.base, "203.0.113.110").await,
        StatusCode::UNAUTHORIZED
    );
    untrusting.stop().await;
}

/// The hardening review: a ban on `2001:db8:66::1` did not stop `2001:db8:66::2`, and one
/// session rotating addresses recorded 60 `UserIpObserved` in a row.
#[tokio::test]
async fn an_ipv6_ban_covers_the_64_and_a_rotating_session_cannot_grow_its_history() {
    let s = Stack::start().await;
    let evader = User::new("Evader", "2001:db8:66::1");
    // Rotating through 60 addresses of its /64, then 60 IPv4 addresses.
    for i in 0..60 {
        let hop = User {
            ip: format!("2001:db8:66::{:x}", i + 2),
            ..evader.clone()
        };
        check_ban(&s, &hop).await;
    }
    for i in 0..60 {
        let hop = User {
            ip: format!("198.51.100.{}", i + 1),
            ..evader.clone()
        };
        check_ban(&s, &hop).await;
    }
    let observed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'UserIpObserved'",
    )
    .bind(evader.id.to_string())
    .fetch_one(&s.db.pool)
    .await
    .unwrap();
    assert!(
        (2..=6).contains(&observed),
        "{observed} addresses recorded: the /64 once, then a few IPv4 at the user's rate"
    );

    // Banned as seen from its first address; the whole /64 is refused, the next one is not.
    ban(&s, &evader).await;
    assert!(wait_refused(&s, &s.api.base, "2001:db8:66::1", Duration::from_secs(10)).await);
    assert_eq!(
        status_from(&s, &s.api.base, "2001:db8:66::beef").await,
        StatusCode::FORBIDDEN
    );
    assert_ne!(
        status_from(&s, &s.api.base, "2001:db8:67::1").await,
        StatusCode::FORBIDDEN
    );
}

/// The hardening review: `/report/pending` was unpaged. It pages like every list.
#[tokio::test]
async fn pending_reviews_are_paged() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let mut banned = vec![];
    for i in 0..3 {
        let u = User::new(&format!("Pending {i}"), &format!("203.0.113.{}", 20 + i));
        ban(&s, &u).await;
        banned.push(u.id.to_string());
    }
    s.projected().await;
    let page = |cursor: Option<String>| {
        let mut url = s.url("/api/v1/report/pending?limit=2");
        if let Some(c) = cursor {
            url = format!("{url}&cursor={c}");
        }
        let req = s.http.get(url).bearer_auth(&admin);
        async move { req.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let first = page(None).await;
    assert_eq!(first["count"], 2, "{first}");
    let cursor = first["nextCursor"].as_str().unwrap().to_owned();
    let second = page(Some(cursor)).await;
    assert_eq!(second["count"], 1, "{second}");
    assert!(second["nextCursor"].is_null());
    let seen: Vec<String> = [&first, &second]
        .iter()
        .flat_map(|p| p["pending"].as_array().unwrap().clone())
        .map(|u| u["userId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, banned, "oldest ban first, each once");
    assert_eq!(first["pending"][0]["reports"].as_array().unwrap().len(), 4);
    let r = s
        .http
        .get(s.url("/api/v1/report/pending?cursor=garbage"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// Bans `target` permanently with four reports giving `reason`.
async fn ban_for(s: &Stack, admin: &str, target: &User, reason: &str) {
    check_ban(s, target).await;
    for i in 0..4 {
        let reporter = User::new(&format!("r{i}"), &format!("198.51.100.{}", 100 + i));
        let r = report(s, &s.api.base, &reporter, target.id, Some(reason)).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    assert_eq!(
        review(s, admin, target.id, "permanent").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_blacklist_is_searched_by_reason_and_period_and_cached_with_an_etag() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let before = chrono::Utc::now();
    ban_for(
        &s,
        &admin,
        &User::new("Alpha", "203.0.113.60"),
        "threats on camera",
    )
    .await;
    ban_for(
        &s,
        &admin,
        &User::new("Beta", "203.0.113.61"),
        "posting spam links",
    )
    .await;
    s.projected().await;
    let get = |query: String| {
        let s = &s;
        async move {
            s.http
                .get(s.url(&format!("/api/v1/report/blacklist{query}")))
                .send()
                .await
                .unwrap()
        }
    };
    let names = |body: &Value| -> Vec<String> {
        body["blacklist"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["userName"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let by_reason: Value = get("?q=links".into()).await.json().await.unwrap();
    assert_eq!(names(&by_reason), ["Beta"], "q matches the ban's reason");
    let enc = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339().replace('+', "%2B");
    let after_both: Value = get(format!("?from={}", enc(chrono::Utc::now())))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after_both["count"], 0);
    let within: Value = get(format!(
        "?from={}&to={}",
        enc(before),
        enc(chrono::Utc::now())
    ))
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(within["count"], 2);
    let backwards = get(format!(
        "?from={}&to={}",
        enc(chrono::Utc::now()),
        enc(before)
    ))
    .await;
    assert_eq!(backwards.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // An ETag; the same ETag again is a 304 with no body.
    let first = get(String::new()).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        first.headers()["cache-control"],
        "no-cache",
        "the tests' api keeps nothing"
    );
    let again = s
        .http
        .get(s.url("/api/v1/report/blacklist"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());

    // An api that keeps answers: a repeated search is served from memory within the interval.
    let mut cfg = config(&s.db.url, &s.nats);
    cfg.blacklist_cache_seconds = 60;
    let cached = start_api(cfg).await;
    s.wait_ready(&cached.base).await;
    let count = |base: String| {
        let s = &s;
        async move {
            let r = s
                .http
                .get(format!("{base}/api/v1/report/blacklist"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.headers()["cache-control"], "public, max-age=60");
            r.json::<Value>().await.unwrap()["count"].as_i64().unwrap()
        }
    };
    assert_eq!(count(cached.base.clone()).await, 2);
    ban_for(&s, &admin, &User::new("Gamma", "203.0.113.62"), "fraud").await;
    s.projected().await;
    assert_eq!(count(cached.base.clone()).await, 2, "served from memory");
    let fresh: Value = get(String::new()).await.json().await.unwrap();
    assert_eq!(
        fresh["count"], 3,
        "an api without the cache sees it at once"
    );
}
