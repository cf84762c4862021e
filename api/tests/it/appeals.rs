//! Appeals of bans, disputes of phone listings, weighted reports and coordination flags, and the
//! emails and admin alerts that follow them — through HTTP against the real stack.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{config, start_api, Instance, Stack};
use crate::reports::{admin_token, wait_refused, User};

/// Emails a fake Resend got: (Idempotency-Key, body). Every call is accepted.
type Mailbox = std::sync::Arc<std::sync::Mutex<Vec<(String, Value)>>>;

async fn mailbox() -> (String, Mailbox) {
    let seen: Mailbox = Default::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/emails",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let log = log.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    let mut log = log.lock().unwrap();
                    log.push((key, body));
                    axum::Json(json!({"id": format!("em_{}", log.len())}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, seen)
}

/// The emails to `to` once `n` of them arrived (within 20 s).
async fn emails_to(seen: &Mailbox, to: &str, n: usize) -> Vec<(String, Value)> {
    let found = testkit::eventually(Duration::from_secs(20), || async {
        let mine: Vec<(String, Value)> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, body)| {
                body["to"]
                    .as_array()
                    .is_some_and(|t| t.contains(&json!(to)))
            })
            .cloned()
            .collect();
        (mine.len() >= n).then_some(mine)
    })
    .await;
    found.unwrap_or_else(|| panic!("no {n} email(s) to {to}: {:?}", seen.lock().unwrap()))
}

async fn post(
    s: &Stack,
    api: &Instance,
    path: &str,
    as_user: &User,
    body: Value,
) -> reqwest::Response {
    s.http
        .post(api.url(path))
        .bearer_auth(&as_user.token)
        .header("x-forwarded-for", as_user.ip())
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn check_ban(s: &Stack, api: &Instance, u: &User) -> Value {
    let r = s
        .http
        .get(api.url("/api/v1/report/check-ban"))
        .bearer_auth(&u.token)
        .header("x-forwarded-for", u.ip())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Four reporters ban `target`; the first opts in to the outcome at `notify`.
async fn ban(s: &Stack, api: &Instance, target: &User, tag: u8, notify: Option<&str>) {
    for i in 0..4u8 {
        let reporter = User::new(&format!("reporter {i}"), &format!("192.0.{tag}.{}", 10 + i));
        let email = if i == 0 { notify } else { None };
        let r = post(
            s,
            api,
            "/api/v1/report/user",
            &reporter,
            json!({"reportedUserId": target.id, "reason": "rude", "notifyEmail": email}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
}

async fn admin_get(s: &Stack, api: &Instance, token: &str, path: &str) -> Value {
    let r = s
        .http
        .get(api.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

async fn admin_post(
    s: &Stack,
    api: &Instance,
    token: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    s.http
        .post(api.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn with_email(s: &Stack) -> (Instance, Mailbox) {
    let (resend, seen) = mailbox().await;
    let mut cfg = config(&s.db.url, &s.nats);
    cfg.email.resend_api_key = Some("re_test".to_owned().into());
    cfg.email.resend_api_url = resend;
    cfg.email.admin_alert_emails = vec!["mod@example.org".into()];
    let api = start_api(cfg).await;
    s.wait_ready(&api.base).await;
    (api, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_banned_user_appeals_once_and_an_overturn_lifts_the_ban_but_not_a_shared_ip() {
    let s = Stack::start().await;
    let (api, seen) = with_email(&s).await;
    let admin = admin_token(&s).await;

    // Ann is seen at .20 and at .21, which Bob also uses; both are banned.
    let ann = User::new("Ann", "203.0.113.20");
    let bob = User::new("Bob", "203.0.113.21");
    let ann_shared = ann.from("203.0.113.21");
    check_ban(&s, &api, &ann).await;
    check_ban(&s, &api, &ann_shared).await;
    check_ban(&s, &api, &bob).await;
    s.projected().await;

    // Nothing to appeal yet.
    let r = post(
        &s,
        &api,
        "/api/v1/report/appeal",
        &ann,
        json!({"text": "hi"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_banned");

    ban(&s, &api, &ann, 1, Some("reporter@example.org")).await;
    ban(&s, &api, &bob, 2, None).await;
    assert!(wait_refused(&s, &api.base, "203.0.113.20", Duration::from_secs(10)).await);

    // Bad appeals say why and write nothing.
    for (body, code) in [
        (json!({}), "text_required"),
        (json!({"text": "   "}), "text_required"),
        // NUL cannot be stored: dropped, so this is an empty text (never a 500).
        (json!({"text": "\u{0}"}), "text_required"),
        (
            json!({"text": "ok", "contactEmail": "a\u{0}@example.org"}),
            "invalid_email",
        ),
        (json!({"text": "x".repeat(4001)}), "text_too_long"),
        (
            json!({"text": "ok", "contactEmail": "not an address"}),
            "invalid_email",
        ),
    ] {
        let r = post(&s, &api, "/api/v1/report/appeal", &ann, body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code);
    }
    // From the banned address: the appeal is one of the few things it may still reach.
    let r = post(
        &s,
        &api,
        "/api/v1/report/appeal",
        &ann,
        json!({"text": "My brother used my account", "contactEmail": "ann@example.org"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let appeal: Value = r.json().await.unwrap();
    let appeal_id = appeal["appealId"].as_str().unwrap().to_owned();
    let again = post(
        &s,
        &api,
        "/api/v1/report/appeal",
        &ann,
        json!({"text": "again"}),
    )
    .await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(
        again.json::<Value>().await.unwrap()["error"],
        "already_appealed"
    );
    // The seed's path answers too.
    let seed_path = post(&s, &api, "/report/appeal", &ann, json!({"text": "again"})).await;
    assert_eq!(seed_path.status(), StatusCode::CONFLICT);

    s.projected().await;
    let seen_by_ann = check_ban(&s, &api, &ann).await;
    assert_eq!(seen_by_ann["appeal"]["status"], "pending", "{seen_by_ann}");
    assert_eq!(seen_by_ann["appeal"]["appealId"], appeal_id.as_str());

    // The queue shows it with the ban; the contact address is nowhere in it.
    let queue = admin_get(&s, &api, &admin, "/api/v1/admin/appeals").await;
    assert_eq!(queue["count"], 1, "{queue}");
    let item = &queue["appeals"][0];
    assert_eq!(item["userId"], ann.id.to_string());
    assert_eq!(item["text"], "My brother used my account");
    assert_eq!(item["banStatus"], "temporary");
    assert!(!queue.to_string().contains("ann@example.org"));
    let bad = admin_get(&s, &api, &admin, "/api/v1/admin/appeals?status=all").await;
    assert_eq!(bad["count"], 1);
    let r = s
        .http
        .get(api.url("/api/v1/admin/appeals?status=maybe"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Decisions: bad ones refused, the overturn lifts Ann's own address only.
    let decide = |id: String, body: Value| {
        let (s, api, admin) = (&s, &api, &admin);
        async move {
            admin_post(
                s,
                api,
                admin,
                &format!("/api/v1/admin/appeals/{id}/decision"),
                body,
            )
            .await
        }
    };
    let r = decide(appeal_id.clone(), json!({"decision": "maybe"})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = decide(Uuid::new_v4().to_string(), json!({"decision": "uphold"})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = decide("nope".into(), json!({"decision": "uphold"})).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = decide(
        appeal_id.clone(),
        json!({"decision": "overturn", "note": "Sorry about that."}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let decided: Value = r.json().await.unwrap();
    assert_eq!(decided["status"], "overturned");
    assert_eq!(decided["banStatus"], "vindicated");
    assert_eq!(decided["ipsLifted"], json!(["203.0.113.20"]));
    let twice = decide(appeal_id.clone(), json!({"decision": "uphold"})).await;
    assert_eq!(twice.status(), StatusCode::CONFLICT);

    s.projected().await;
    let after = check_ban(&s, &api, &ann).await;
    assert_eq!(after["banStatus"], "vindicated");
    assert_eq!(after["appeal"]["status"], "overturned");
    assert_eq!(after["appeal"]["note"], "Sorry about that.");
    let free = testkit::eventually(Duration::from_secs(10), || async {
        let status = crate::reports::status_from(&s, &api.base, "203.0.113.20").await;
        (status != StatusCode::FORBIDDEN).then_some(())
    })
    .await;
    assert!(free.is_some(), "Ann's own address is still refused");
    assert!(
        wait_refused(&s, &api.base, "203.0.113.21", Duration::from_secs(2)).await,
        "the address Bob shares was unbanned"
    );

    // Bob's appeal is upheld: he stays banned and sees it.
    let r = post(
        &s,
        &api,
        "/api/v1/report/appeal",
        &bob,
        json!({"text": "Not me"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let bob_appeal = r.json::<Value>().await.unwrap()["appealId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.projected().await;
    let r = decide(bob_appeal.clone(), json!({"decision": "uphold"})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["banStatus"], "temporary");
    s.projected().await;
    let bob_sees = check_ban(&s, &api, &bob).await;
    assert_eq!(bob_sees["isBanned"], true);
    assert_eq!(bob_sees["appeal"]["status"], "upheld");

    // Emails: Ann hears of her appeal, the reporter who opted in of the outcome, once each.
    let to_ann = emails_to(&seen, "ann@example.org", 1).await;
    assert_eq!(to_ann[0].0, format!("appeal-outcome-{appeal_id}"));
    let text = to_ann[0].1["text"].as_str().unwrap();
    assert!(
        text.contains("ban is lifted") && text.contains("Sorry about that."),
        "{text}"
    );
    let to_reporter = emails_to(&seen, "reporter@example.org", 1).await;
    assert!(to_reporter[0].1["text"]
        .as_str()
        .unwrap()
        .contains("did not break the rules"));
    // The admins heard of both appeals.
    let to_mods = emails_to(&seen, "mod@example.org", 2).await;
    let mut keys: Vec<&str> = to_mods.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort();
    let mut want = [
        format!("alert-appeal-{appeal_id}"),
        format!("alert-appeal-{bob_appeal}"),
    ];
    want.sort();
    assert_eq!(keys, want);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let others = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, body)| body["to"] != json!(["mod@example.org"]))
        .count();
    assert_eq!(others, 2, "Bob gave no address; nothing else is sent");

    // A host platform hears of the appeal, the lifted ban and which IPs stay banned.
    let platform: Value = admin_post(
        &s,
        &api,
        &admin,
        "/api/v1/admin/platforms",
        json!({"name": "chat"}),
    )
    .await
    .json()
    .await
    .unwrap();
    let feed: Value = s
        .http
        .get(api.url("/api/v1/platform/bans?since=0&limit=100"))
        .bearer_auth(platform["apiKey"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let anns: Vec<&Value> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["userId"] == ann.id.to_string())
        .collect();
    let kinds: Vec<&str> = anns.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "UserAutoBanned",
            "AppealDecided",
            "BanReviewed",
            "IpBansLifted"
        ]
    );
    assert_eq!(anns[1]["appealOutcome"], "overturned");
    assert_eq!(anns[3]["ips"], json!(["203.0.113.20"]));
    assert_eq!(anns[3]["ipsKept"], json!(["203.0.113.21"]));
    // The stream never carries the contact addresses, nor the platform key's hash.
    let js = s.js("api").await;
    let mut stream = js.get_stream("EVENTS").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    for seq in 1..=last {
        if let Ok(msg) = stream.get_raw_message(seq).await {
            let text = String::from_utf8_lossy(&msg.payload);
            assert!(
                !text.contains("@example.org"),
                "an address is on the stream at {seq}: {text}"
            );
            assert!(
                !text.contains("keyHash"),
                "a key hash is on the stream: {text}"
            );
        }
    }
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_owner_disputes_a_listing_and_an_overturn_clears_it() {
    let s = Stack::start().await;
    let (api, seen) = with_email(&s).await;
    let admin = admin_token(&s).await;
    let number = "+14155550142";
    let lookup = || async {
        s.http
            .get(api.url(&format!("/api/v1/client/phones/{number}")))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    let dispute = |body: Value| {
        let (s, api) = (&s, &api);
        async move {
            s.http
                .post(api.url(&format!("/api/v1/client/phones/{number}/dispute")))
                .header("x-forwarded-for", "198.51.100.77")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let owner = json!({"text": "This is my bakery", "contactEmail": "baker@example.org"});
    let r = dispute(owner.clone()).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_listed");

    let r = s
        .http
        .post(api.url("/api/v1/client/phones/report"))
        .header("x-forwarded-for", "198.51.100.5")
        .json(&json!({"phoneNumber": number, "category": "scam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let report_id = r.json::<Value>().await.unwrap()["reportId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.projected().await;
    let r = admin_post(
        &s,
        &api,
        &admin,
        &format!("/api/v1/admin/phones/{report_id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    s.projected().await;
    assert_eq!(lookup().await["status"], "dangerous");

    for (body, code) in [
        (json!({"text": "mine"}), "email_required"),
        (
            json!({"contactEmail": "baker@example.org"}),
            "text_required",
        ),
        (
            json!({"text": "mine", "contactEmail": "nope"}),
            "invalid_email",
        ),
    ] {
        let r = dispute(body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(r.json::<Value>().await.unwrap()["error"], code);
    }
    let r = dispute(owner.clone()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let dispute_id = r.json::<Value>().await.unwrap()["disputeId"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = dispute(owner).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "already_disputed"
    );

    s.projected().await;
    let queue = admin_get(&s, &api, &admin, "/api/v1/admin/phone-disputes").await;
    assert_eq!(queue["disputes"][0]["phoneNumber"], number);
    assert_eq!(queue["disputes"][0]["numberStatus"], "dangerous");
    assert!(!queue.to_string().contains("baker@"));
    let r = admin_post(
        &s,
        &api,
        &admin,
        &format!("/api/v1/admin/phone-disputes/{dispute_id}/decision"),
        json!({"decision": "overturn", "note": "Verified with the shop."}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["clearedReports"],
        json!([report_id])
    );
    s.projected().await;
    assert_ne!(lookup().await["status"], "dangerous");
    let decided = admin_get(
        &s,
        &api,
        &admin,
        "/api/v1/admin/phone-disputes?status=overturned",
    )
    .await;
    assert_eq!(decided["count"], 1);

    let mail = emails_to(&seen, "baker@example.org", 1).await;
    assert_eq!(mail[0].0, format!("dispute-outcome-{dispute_id}"));
    let text = mail[0].1["text"].as_str().unwrap();
    assert!(
        text.contains("no longer listed") && text.contains(number),
        "{text}"
    );
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_reports_count_one_network_once_and_the_review_card_flags_coordination() {
    let s = Stack::start().await;
    let mut cfg = config(&s.db.url, &s.nats);
    cfg.weights.one_per_network = true;
    let api = start_api(cfg).await;
    s.wait_ready(&api.base).await;
    let admin = admin_token(&s).await;

    // Four reporters behind one IPv6 /64: one vote, no ban; each report's weight is recorded.
    let target = User::new("Target", "203.0.113.60");
    for i in 0..4 {
        let reporter = User::new(&format!("sock {i}"), &format!("2001:db8:77::{}", i + 1));
        let r = post(
            &s,
            &api,
            "/api/v1/report/user",
            &reporter,
            json!({"reportedUserId": target.id}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.json::<Value>().await.unwrap()["autoBanned"], false);
    }
    s.projected().await;
    let reports = admin_get(
        &s,
        &api,
        &admin,
        &format!("/api/v1/report/reports?userId={}", target.id),
    )
    .await;
    let mut weights: Vec<f64> = reports["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["weight"].as_f64().unwrap())
        .collect();
    weights.sort_by(f64::total_cmp);
    assert_eq!(weights, [0.0, 0.0, 0.0, 1.0]);
    // Three more from other networks reach the threshold.
    for i in 0..3 {
        let reporter = User::new(&format!("real {i}"), &format!("198.51.10{i}.1"));
        let r = post(
            &s,
            &api,
            "/api/v1/report/user",
            &reporter,
            json!({"reportedUserId": target.id}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(r.json::<Value>().await.unwrap()["autoBanned"], i == 2);
    }

    // The review card shows the burst and the shared subnet.
    s.projected().await;
    let pending = admin_get(&s, &api, &admin, "/api/v1/report/pending").await;
    let card = &pending["pending"][0];
    assert_eq!(card["userId"], target.id.to_string());
    let flags: Vec<&str> = card["coordination"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert!(flags.contains(&"same_subnet"), "{card}");
    assert!(flags.contains(&"burst"), "{card}");
    let subnet = card["coordination"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "same_subnet")
        .unwrap();
    assert_eq!(subnet["reportIds"].as_array().unwrap().len(), 4);
    assert!(subnet["detail"]
        .as_str()
        .unwrap()
        .contains("2001:db8:77::/64"));
    api.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_are_alerted_of_appeals_and_of_pending_reviews_piling_up() {
    let s = Stack::start().await;
    let (hook, got) = crate::platforms::receiver().await;
    let mut cfg = config(&s.db.url, &s.nats);
    cfg.email.admin_alert_webhook_url = Some(hook);
    cfg.email.pending_reviews_alert_at = 2;
    let api = start_api(cfg).await;
    s.wait_ready(&api.base).await;
    let kinds = |n: usize| {
        let got = got.clone();
        async move {
            testkit::eventually(Duration::from_secs(20), || async {
                let bodies: Vec<Value> = got
                    .lock()
                    .unwrap()
                    .iter()
                    .filter_map(|(_, _, body)| serde_json::from_str(body).ok())
                    .collect();
                // The receiver fails its first request: that alert arrives twice (retried).
                let mut kinds: Vec<String> = Vec::new();
                for b in &bodies {
                    let kind = b["kind"].as_str().unwrap_or_default().to_owned();
                    if !kinds.contains(&kind) {
                        kinds.push(kind);
                    }
                }
                (kinds.len() >= n).then_some((kinds, bodies))
            })
            .await
        }
    };

    let first = User::new("First", "203.0.113.70");
    ban(&s, &api, &first, 7, None).await;
    s.projected().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        got.lock().unwrap().is_empty(),
        "one pending review is under the threshold of 2"
    );
    let second = User::new("Second", "203.0.113.71");
    ban(&s, &api, &second, 8, None).await;
    let (alerts, bodies) = kinds(1).await.expect("no pending-reviews alert");
    assert_eq!(alerts, ["pending_reviews"]);
    assert!(bodies[0]["text"]
        .as_str()
        .unwrap()
        .contains("2 bans await review"));

    let r = post(
        &s,
        &api,
        "/api/v1/report/appeal",
        &second,
        json!({"text": "please"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (alerts, _) = kinds(2).await.expect("no appeal alert");
    assert_eq!(alerts, ["pending_reviews", "appeal"]);
    let pending_alerts = || {
        got.lock()
            .unwrap()
            .iter()
            .filter(|(_, _, body)| body.contains("pending_reviews"))
            .count()
    };
    let retried = testkit::eventually(Duration::from_secs(20), || async {
        (pending_alerts() == 2).then_some(())
    })
    .await;
    assert!(retried.is_some(), "the refused alert was not retried");
    // A third pending ban does not alert again (once, until the queue drops below 2).
    ban(&s, &api, &User::new("Third", "203.0.113.72"), 9, None).await;
    s.projected().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (alerts, bodies) = kinds(2).await.unwrap();
    assert_eq!(alerts, ["pending_reviews", "appeal"]);
    assert!(bodies
        .iter()
        .all(|b| b["link"].as_str().unwrap().contains("/admin")));
    assert_eq!(
        pending_alerts(),
        2,
        "one refused attempt and its retry, nothing more"
    );
    api.stop().await;
}

#[tokio::test]
async fn a_banned_user_has_a_shareable_blacklist_page_and_nobody_else_does() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let gone = User::new("Gone Gary", "203.0.113.90");
    let pending = User::new("Pending Paula", "203.0.113.91");
    check_ban(&s, &s.api, &gone).await;
    check_ban(&s, &s.api, &pending).await;
    ban(&s, &s.api, &gone, 11, None).await;
    ban(&s, &s.api, &pending, 12, None).await;
    s.projected().await;
    let r = crate::reports::review(&s, &admin, gone.id, "permanent").await;
    assert_eq!(r.status(), StatusCode::OK);
    s.projected().await;

    let get = |path: String| {
        let s = &s;
        async move {
            s.http
                .get(s.url(&path))
                .header("x-forwarded-for", "203.0.113.90")
                .send()
                .await
                .unwrap()
        }
    };
    // From the banned user's own address too: the blacklist stays readable.
    let r = get(format!("/api/v1/report/blacklist/{}", gone.id)).await;
    assert_eq!(r.status(), StatusCode::OK);
    // (The tests run with BLACKLIST_CACHE_SECONDS=0.)
    assert_eq!(r.headers()["cache-control"], "no-cache");
    let entry: Value = r.json().await.unwrap();
    assert_eq!(entry["userId"], gone.id.to_string());
    assert_eq!(entry["userName"], "Gone Gary");
    assert_eq!(entry["reportCount"], 4);
    assert_eq!(entry["reportsByCategory"], json!({"other": 4}));
    let seed_path = get(format!("/report/blacklist/{}", gone.id)).await;
    assert_eq!(seed_path.status(), StatusCode::OK);
    let list: Value = get("/api/v1/report/blacklist".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["blacklist"][0]["userId"], gone.id.to_string());

    let page = get(format!("/blacklist/{}", gone.id)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("Gone Gary") && html.contains(&format!("/blacklist/{}", gone.id)));
    let list_page = get("/blacklist".into()).await.text().await.unwrap();
    assert!(list_page.contains(&format!("href=\"/blacklist/{}\"", gone.id)));

    // A pending ban, an unknown user and garbage are not on it.
    for id in [pending.id.to_string(), Uuid::new_v4().to_string()] {
        assert_eq!(
            get(format!("/api/v1/report/blacklist/{id}")).await.status(),
            StatusCode::NOT_FOUND
        );
        let page = get(format!("/blacklist/{id}")).await;
        assert_eq!(page.status(), StatusCode::NOT_FOUND);
        assert!(!page.text().await.unwrap().contains("Pending Paula"));
    }
    assert_eq!(
        get("/api/v1/report/blacklist/nope".into()).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        get("/blacklist/nope".into()).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_user_downloads_everything_held_about_them_and_an_admin_can_too() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let zoe = User::new("Zoe", "203.0.113.80");
    check_ban(&s, &s.api, &zoe).await;
    check_ban(&s, &s.api, &zoe.from("203.0.113.81")).await;
    // Zoe reports someone (asking for the outcome), and is reported and banned herself.
    let other = User::new("Other", "203.0.113.82");
    let r = post(
        &s,
        &s.api,
        "/api/v1/report/user",
        &zoe,
        json!({"reportedUserId": other.id, "category": "spam", "reason": "links", "notifyEmail": "zoe@example.org"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    ban(&s, &s.api, &zoe, 13, None).await;
    let r = post(
        &s,
        &s.api,
        "/api/v1/report/appeal",
        &zoe,
        json!({"text": "I was hacked", "contactEmail": "zoe2@example.org"}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    s.projected().await;

    // From her banned address: access is a right the ban does not take away.
    let r = s
        .http
        .get(s.url("/api/v1/report/my-data"))
        .bearer_auth(&zoe.token)
        .header("x-forwarded-for", zoe.ip())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(r.headers()["cache-control"], "no-store");
    let mine: Value = r.json().await.unwrap();
    assert_eq!(mine["userId"], zoe.id.to_string());
    assert_eq!(mine["profile"]["name"], "Zoe");
    assert_eq!(mine["profile"]["banStatus"], "temporary");
    let ips: Vec<&str> = mine["ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ip"].as_str().unwrap())
        .collect();
    assert_eq!(ips, ["203.0.113.80", "203.0.113.81"]);
    assert_eq!(mine["bannedIps"], json!(["203.0.113.80", "203.0.113.81"]));
    assert_eq!(mine["reportsAgainst"].as_array().unwrap().len(), 4);
    assert_eq!(
        mine["reportsFiled"][0]["reportedUserId"],
        other.id.to_string()
    );
    assert_eq!(mine["reportsFiled"][0]["category"], "spam");
    assert_eq!(mine["appeals"][0]["text"], "I was hacked");
    assert_eq!(
        mine["contactEmails"],
        json!(["zoe2@example.org", "zoe@example.org"])
    );
    // Nobody else is named: not the reporters, not their addresses.
    let text = mine.to_string();
    assert!(
        !text.contains("192.0.13."),
        "a reporter's address is in the export"
    );
    assert!(!text.contains("reporter"), "{text}");

    // The admin gets the same export; unknown subjects and kinds are 404, garbage 422.
    let get = |path: String| {
        let (s, admin) = (&s, &admin);
        async move {
            s.http
                .get(s.url(&path))
                .bearer_auth(admin)
                .send()
                .await
                .unwrap()
        }
    };
    let r = get(format!(
        "/api/v1/admin/subjects/platform_user/{}/data",
        zoe.id
    ))
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let theirs: Value = r.json().await.unwrap();
    assert_eq!(theirs["reportsAgainst"], mine["reportsAgainst"]);
    assert_eq!(theirs["contactEmails"], mine["contactEmails"]);
    for (path, status) in [
        (
            format!(
                "/api/v1/admin/subjects/platform_user/{}/data",
                Uuid::new_v4()
            ),
            StatusCode::NOT_FOUND,
        ),
        (
            format!("/api/v1/admin/subjects/planet/{}/data", zoe.id),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/admin/subjects/platform_user/nope/data".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        assert_eq!(get(path.clone()).await.status(), status, "{path}");
    }
    let r = s
        .http
        .get(s.url(&format!(
            "/api/v1/admin/subjects/platform_user/{}/data",
            zoe.id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = s
        .http
        .get(s.url("/api/v1/report/my-data"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
