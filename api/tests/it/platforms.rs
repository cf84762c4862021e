//! Host platforms: registration and keys, and the ban feed they follow (a page, and live over
//! server-sent events, resumable from any cursor across api instances).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{config, start_api, Stack};
use crate::reports::{admin_token, ban, check_ban, review, User};

async fn register(s: &Stack, admin: &str, name: &str) -> Value {
    let r = s
        .http
        .post(s.url("/api/v1/admin/platforms"))
        .bearer_auth(admin)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json().await.unwrap()
}

/// One server-sent event: (event, id, data).
type Sse = (String, Option<String>, String);

/// Reads events from an open stream until `want` says stop (or 15 s pass).
async fn read_events(resp: &mut reqwest::Response, want: impl Fn(&[Sse]) -> bool) -> Vec<Sse> {
    let mut text = String::new();
    let mut events = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), async {
        while !want(&events) {
            let Some(chunk) = resp.chunk().await.unwrap() else {
                break;
            };
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let frame: String = text.drain(..end + 2).collect();
                let field = |name: &str| {
                    frame
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
                };
                if let Some(event) = field("event:") {
                    events.push((event, field("id:"), field("data:").unwrap_or_default()));
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "timed out; events so far: {events:?}");
    events
}

async fn open_stream(
    s: &Stack,
    base: &str,
    key: &str,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut req = s
        .http
        .get(format!("{base}/api/v1/platform/bans/stream"))
        .bearer_auth(key);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    resp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_platform_hears_of_a_ban_at_once_and_resumes_on_another_instance_without_gaps() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let platform = register(&s, &admin, "chat.example").await;
    let key = platform["apiKey"].as_str().unwrap().to_owned();
    assert!(key.starts_with("blp_"));

    let mut live = open_stream(&s, &s.api.base, &key, None).await;
    let ready = read_events(&mut live, |e| !e.is_empty()).await;
    assert_eq!(ready[0].0, "ready");
    assert!(ready[0].1.is_some(), "ready carries the cursor of now");

    // The fourth report bans the user; the stream says so with the decision's cursor.
    let target = User::new("Mallory", "203.0.113.7");
    check_ban(&s, &target).await;
    let started = Instant::now();
    ban(&s, &target).await;
    let banned = read_events(&mut live, |e| e.iter().any(|(k, ..)| k == "ban")).await;
    let latency = started.elapsed();
    let (_, id, data) = banned.iter().find(|(k, ..)| k == "ban").unwrap().clone();
    let decision: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(decision["kind"], "UserAutoBanned");
    assert_eq!(decision["userId"], target.id.to_string());
    assert_eq!(decision["banStatus"], "temporary");
    assert_eq!(decision["ips"], json!(["203.0.113.7"]));
    assert_eq!(decision["reportCount"], 4);
    let first = id.expect("each decision carries its cursor");
    assert_eq!(decision["cursor"], first.as_str());
    eprintln!("ban to SSE: {latency:?} (four reports and the stream)");
    drop(live);

    // A decision while the platform is away; it resumes on another api instance.
    assert_eq!(
        review(&s, &admin, target.id, "permanent").await.status(),
        StatusCode::OK
    );
    let other = start_api(config(&s.db.url, &s.nats)).await;
    s.wait_ready(&other.base).await;
    let mut resumed = open_stream(&s, &other.base, &key, Some(&first)).await;
    let events = read_events(&mut resumed, |e| e.iter().any(|(k, ..)| k == "ban")).await;
    assert_eq!(
        events[0],
        ("ready".into(), Some(first.clone()), "{}".into())
    );
    let bans: Vec<Value> = events
        .iter()
        .filter(|(k, ..)| k == "ban")
        .map(|(_, _, d)| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(bans.len(), 1, "nothing repeated: {bans:?}");
    assert_eq!(
        (bans[0]["kind"].as_str(), bans[0]["banStatus"].as_str()),
        (Some("BanReviewed"), Some("permanent"))
    );

    // The same history as pages, and an empty page at the end with the same cursor.
    let page = |since: String| {
        let (s, key) = (&s, key.clone());
        async move {
            s.http
                .get(s.url(&format!("/api/v1/platform/bans?since={since}&limit=1")))
                .bearer_auth(key)
                .send()
                .await
                .unwrap()
        }
    };
    let mut since = "0".to_owned();
    let mut kinds = Vec::new();
    for _ in 0..10 {
        let r = page(since.clone()).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        let next = body["nextCursor"].as_str().unwrap().to_owned();
        for item in body["items"].as_array().unwrap() {
            kinds.push(item["kind"].as_str().unwrap().to_owned());
        }
        if next == since {
            assert!(body["items"].as_array().unwrap().is_empty());
            break;
        }
        since = next;
    }
    assert_eq!(kinds, ["UserAutoBanned", "BanReviewed"]);

    // Bad cursors, bad keys.
    for bad in ["abc", "-1", "99999999999999"] {
        assert_eq!(
            page(bad.into()).await.status(),
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let no_key = s
        .http
        .get(s.url("/api/v1/platform/bans"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        no_key.json::<Value>().await.unwrap()["error"],
        "missing_key"
    );
    let forged = format!("blp_{}_guess", uuid::Uuid::new_v4().simple());
    for wrong in [forged.as_str(), "not-a-key"] {
        let r = s
            .http
            .get(s.url("/api/v1/platform/bans"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_key");
    }

    // Revoked: the key stops working, an open stream ends at the next decision; the admin list
    // says when.
    let mut open = open_stream(&s, &s.api.base, &key, None).await;
    assert_eq!(
        read_events(&mut open, |e| !e.is_empty()).await[0].0,
        "ready"
    );
    let id = platform["platformId"].as_str().unwrap();
    let r = s
        .http
        .delete(s.url(&format!("/api/v1/admin/platforms/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(page("0".into()).await.status(), StatusCode::UNAUTHORIZED);
    ban(&s, &User::new("Eve", "203.0.113.8")).await;
    let after = read_events(&mut open, |_| false).await;
    assert!(
        after.iter().all(|(kind, ..)| kind != "ban"),
        "a revoked key heard of a ban: {after:?}"
    );
    s.projected().await;
    let list: Value = s
        .http
        .get(s.url("/api/v1/admin/platforms"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["name"], "chat.example");
    assert!(list["items"][0]["revokedAt"].is_string(), "{list}");
}

#[tokio::test]
async fn platform_registration_needs_an_admin_and_a_name() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let r = s
        .http
        .post(s.url("/api/v1/admin/platforms"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for bad in [
        json!({}),
        json!({"name": "  "}),
        json!({"name": "x".repeat(101)}),
    ] {
        let r = s
            .http
            .post(s.url("/api/v1/admin/platforms"))
            .bearer_auth(&admin)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let r = s
        .http
        .delete(s.url(&format!("/api/v1/admin/platforms/{}", uuid::Uuid::new_v4())))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// What the fake receiver got: (signature header, event id, body as sent).
pub type Received = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// A webhook receiver on loopback that answers 500 to its first request, 200 after.
pub async fn receiver() -> (String, Received) {
    let got: Received = Default::default();
    let log = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let log = log.clone();
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                let mut log = log.lock().unwrap();
                log.push((
                    header("blacklist-signature"),
                    header("blacklist-event-id"),
                    body,
                ));
                if log.len() == 1 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, got)
}

/// What a receiver does: recompute the signature over `<t>.<body>` with the shared secret.
fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let fresh = (chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap()).abs() < 300;
    fresh && expected == v1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_in_order_and_every_attempt_is_visible() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let platform = register(&s, &admin, "chat.example").await;
    let key = platform["apiKey"].as_str().unwrap().to_owned();
    let platform_id = platform["platformId"].as_str().unwrap().to_owned();
    let (url, got) = receiver().await;

    let put = |body: Value| {
        let (s, key) = (&s, key.clone());
        async move {
            s.http
                .put(s.url("/api/v1/platform/webhook"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    for bad in [
        json!({}),
        json!({"url": "ftp://example.org/hook"}),
        json!({"url": "https://user:pw@example.org/hook"}),
        json!({"url": "https://no-such-host.invalid/hook"}),
    ] {
        let r = put(bad.clone()).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    let r = put(json!({ "url": url })).await;
    assert_eq!(r.status(), StatusCode::OK);
    let hook: Value = r.json().await.unwrap();
    let secret = hook["signingSecret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));

    // A ban: the first POST fails, the retry lands; then a review follows it, in order.
    let target = User::new("Mallory", "203.0.113.9");
    ban(&s, &target).await;
    let two = testkit::eventually(Duration::from_secs(20), || async {
        (got.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    assert!(two.is_some(), "no retry: {:?}", got.lock().unwrap());
    assert_eq!(
        review(&s, &admin, target.id, "vindicated").await.status(),
        StatusCode::OK
    );
    let four = testkit::eventually(Duration::from_secs(20), || async {
        (got.lock().unwrap().len() >= 4).then_some(())
    })
    .await;
    assert!(
        four.is_some(),
        "no review delivered: {:?}",
        got.lock().unwrap()
    );
    let got = got.lock().unwrap().clone();
    let bodies: Vec<Value> = got
        .iter()
        .map(|(_, _, b)| serde_json::from_str(b).unwrap())
        .collect();
    let kinds: Vec<&str> = bodies.iter().map(|b| b["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "UserAutoBanned",
            "UserAutoBanned",
            "BanReviewed",
            "IpBansLifted"
        ]
    );
    assert_eq!(got[0].1, got[1].1, "the retry carries the same event id");
    assert_eq!(bodies[2]["banStatus"], "vindicated");
    assert_eq!(bodies[3]["ips"], bodies[0]["ips"], "nobody else holds them");
    for ((signature, id, raw), body) in got.iter().zip(&bodies) {
        assert_eq!(body["cursor"].as_str(), Some(id.as_str()));
        assert!(
            verify(&secret, signature, raw.as_bytes()),
            "bad signature {signature}"
        );
        assert!(!verify("whsec_wrong", signature, raw.as_bytes()));
    }

    // Every attempt is evented and listed for admins.
    let attempts = testkit::eventually(Duration::from_secs(10), || async {
        let list: Value = s
            .http
            .get(s.url(&format!("/api/v1/admin/platforms/{platform_id}/deliveries")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = list["items"].as_array().cloned().unwrap_or_default();
        (items.len() >= 4).then_some(items)
    })
    .await
    .expect("four attempts listed");
    let outcomes: Vec<(&str, i64)> = attempts
        .iter()
        .rev()
        .map(|a| {
            (
                a["outcome"].as_str().unwrap(),
                a["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("failed", 1),
            ("delivered", 2),
            ("delivered", 1),
            ("delivered", 1)
        ]
    );
    assert_eq!(attempts.last().unwrap()["status"], 500);

    // The platform sees its webhook; removing it twice is a conflict the second time.
    let mine: Value = s
        .http
        .get(s.url("/api/v1/platform/webhook"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["url"], url.as_str());
    assert_eq!(mine["signingSecret"], secret.as_str());
    for expected in [StatusCode::NO_CONTENT, StatusCode::CONFLICT] {
        let r = s
            .http
            .delete(s.url("/api/v1/platform/webhook"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected);
    }
}

#[tokio::test]
async fn a_webhook_may_not_point_inside_unless_allowed() {
    let s = Stack::start().await;
    let mut strict = config(&s.db.url, &s.nats);
    strict.webhook_allow_private_targets = false;
    let api = start_api(strict).await;
    s.wait_ready(&api.base).await;
    let admin = admin_token(&s).await;
    let key = register(&s, &admin, "p").await["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();
    for inside in [
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://localhost/hook",
    ] {
        let r = s
            .http
            .put(format!("{}/api/v1/platform/webhook", api.base))
            .bearer_auth(&key)
            .json(&json!({ "url": inside }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{inside}");
        assert_eq!(
            r.json::<Value>().await.unwrap()["error"],
            "invalid_webhook_url"
        );
    }
}

#[tokio::test]
async fn a_report_button_knows_a_reported_pair_and_the_seed_paths_answer_too() {
    let s = Stack::start().await;
    let (reporter, other) = (
        User::new("Alice", "192.0.2.40"),
        User::new("Bob", "192.0.2.41"),
    );
    let target = User::new("Mallory", "203.0.113.40");
    let status = |u: &User, query: String| {
        let (s, token) = (&s, u.token.clone());
        async move {
            s.http
                .get(s.url(&format!("/api/v1/report/status{query}")))
                .bearer_auth(token)
                .header("x-forwarded-for", "192.0.2.40")
                .send()
                .await
                .unwrap()
        }
    };
    let q = format!("?reportedUserId={}", target.id);
    let before: Value = status(&reporter, q.clone()).await.json().await.unwrap();
    assert_eq!(before["reported"], false);

    // The seed's path: POST /report/user at the root, as host platforms written against it call.
    let r = s
        .http
        .post(s.url("/report/user"))
        .bearer_auth(&reporter.token)
        .header("x-forwarded-for", "192.0.2.40")
        .json(&json!({"reportedUserId": target.id, "reason": "spam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let after: Value = status(&reporter, q.clone()).await.json().await.unwrap();
    assert_eq!(after["reported"], true, "immediately, from the event store");
    assert_eq!(after["reportedUserId"], target.id.to_string());
    let theirs: Value = status(&other, q.clone()).await.json().await.unwrap();
    assert_eq!(theirs["reported"], false, "per reporter");
    for bad in ["".to_owned(), "?reportedUserId=nope".to_owned()] {
        assert_eq!(
            status(&reporter, bad.clone()).await.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}"
        );
    }
    let anonymous = s
        .http
        .get(s.url(&format!("/api/v1/report/status{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The other seed paths answer at the root as under /api/v1.
    let check = s
        .http
        .get(s.url("/report/check-ban"))
        .bearer_auth(&target.token)
        .header("x-forwarded-for", "203.0.113.40")
        .send()
        .await
        .unwrap();
    assert_eq!(check.status(), StatusCode::OK);
    assert_eq!(check.json::<Value>().await.unwrap()["isBanned"], false);
    let blacklist = s.http.get(s.url("/report/blacklist")).send().await.unwrap();
    assert_eq!(blacklist.status(), StatusCode::OK);
    let stats = s.http.get(s.url("/report/stats")).send().await.unwrap();
    assert_eq!(
        stats.status(),
        StatusCode::UNAUTHORIZED,
        "admin only, as documented"
    );
}

#[tokio::test]
async fn reports_carry_a_category_counted_in_the_stats_and_filtering_the_blacklist() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let (hateful, spammer) = (
        User::new("Hater", "203.0.113.50"),
        User::new("Spammer", "203.0.113.51"),
    );
    let file = |by: usize, target: uuid::Uuid, category: Option<&str>| {
        let s = &s;
        let reporter = User::new(&format!("r{by}"), &format!("192.0.2.{}", 60 + by));
        let body = match category {
            Some(c) => json!({"reportedUserId": target, "category": c}),
            None => json!({"reportedUserId": target}),
        };
        async move {
            s.http
                .post(s.url("/api/v1/report/user"))
                .bearer_auth(&reporter.token)
                .header("x-forwarded-for", format!("192.0.2.{}", 60 + by))
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    // Their names are known from their own first requests.
    check_ban(&s, &hateful).await;
    check_ban(&s, &spammer).await;
    let bad = file(0, hateful.id, Some("rude")).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["error"],
        "invalid_category"
    );
    for by in 0..4 {
        let r = file(by, hateful.id, Some("hate")).await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    for by in 4..8 {
        let category = (by == 4).then_some("spam");
        assert_eq!(
            file(by, spammer.id, category).await.status(),
            StatusCode::CREATED
        );
    }
    for user in [&hateful, &spammer] {
        assert_eq!(
            review(&s, &admin, user.id, "permanent").await.status(),
            StatusCode::OK
        );
    }
    s.projected().await;
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
    let by = &stats["reportsByCategory"];
    assert_eq!(
        (
            by["hate"].as_i64(),
            by["spam"].as_i64(),
            by["other"].as_i64()
        ),
        (Some(4), Some(1), Some(3))
    );
    assert_eq!(by["minor_safety"], 0, "every category is listed");
    let names = |category: &str| {
        let s = &s;
        let url = s.url(&format!("/api/v1/report/blacklist?category={category}"));
        async move {
            let r = s.http.get(url).send().await.unwrap();
            let status = r.status();
            let body: Value = r.json().await.unwrap_or_default();
            let names: Vec<String> = body["blacklist"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| e["userName"].as_str().unwrap_or_default().to_owned())
                .collect();
            (status, names, body["count"].as_i64())
        }
    };
    assert_eq!(
        names("hate").await,
        (StatusCode::OK, vec!["Hater".to_owned()], Some(1))
    );
    assert_eq!(names("spam").await.1, ["Spammer"]);
    assert_eq!(names("minor_safety").await.1, Vec::<String>::new());
    assert_eq!(names("nonsense").await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let reports: Value = s
        .http
        .get(s.url(&format!("/api/v1/report/reports?userId={}", hateful.id)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reports["reports"][0]["category"], "hate");
}

#[tokio::test]
async fn a_platform_holds_at_most_eight_streams_per_instance() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let key = register(&s, &admin, "p").await["apiKey"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(open_stream(&s, &s.api.base, &key, None).await);
    }
    let ninth = s
        .http
        .get(s.url("/api/v1/platform/bans/stream"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(ninth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(ninth.headers().contains_key("retry-after"));
    // A closed stream gives its slot back.
    drop(open.pop());
    let back = testkit::eventually(Duration::from_secs(10), || async {
        let r = s
            .http
            .get(s.url("/api/v1/platform/bans/stream"))
            .bearer_auth(&key)
            .send()
            .await
            .ok()?;
        (r.status() == StatusCode::OK).then_some(r)
    })
    .await;
    assert!(back.is_some(), "the slot never came back");
}
