//! Phone-number reputation: normalisation, moderation, anti-inflation, Turnstile, rate limits.

use reqwest::StatusCode;
use serde_json::{json, Value};
use testkit::FakeTurnstile;

use crate::helpers::{config, start_api, Instance, Stack};

async fn report(s: &Stack, base: &str, ip: &str, body: Value) -> reqwest::Response {
    s.http
        .post(format!("{base}/api/v1/client/phones/report"))
        .header("x-forwarded-for", ip)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn lookup(s: &Stack, number: &str) -> Value {
    let r = s
        .http
        .get(s.url(&format!("/api/v1/client/phones/{number}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn admin(s: &Stack) -> String {
    let password = s.seed().await;
    s.token(&password).await
}

async fn list(s: &Stack, token: &str, query: &str) -> Value {
    let r = s
        .http
        .get(s.url(&format!("/api/v1/admin/phones?{query}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

async fn act(s: &Stack, token: &str, id: &str, verb: &str) -> StatusCode {
    let req = match verb {
        "delete" => s.http.delete(s.url(&format!("/api/v1/admin/phones/{id}"))),
        v => s
            .http
            .post(s.url(&format!("/api/v1/admin/phones/{id}/{v}"))),
    };
    req.bearer_auth(token).send().await.unwrap().status()
}

#[tokio::test]
async fn every_spelling_is_one_number_and_moderation_decides_its_standing() {
    let s = Stack::start().await;
    let token = admin(&s).await;
    let spellings = [
        json!({"phoneNumber": "+1 (415) 555-0100", "category": "scam", "description": "fake IRS agent"}),
        json!({"phoneNumber": "+14155550100", "category": "spam"}),
        json!({"phoneNumber": "(415) 555-0100", "region": "US", "category": "scam"}),
    ];
    for (i, body) in spellings.into_iter().enumerate() {
        let r = report(&s, &s.api.base, &format!("198.51.100.{i}"), body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let b: Value = r.json().await.unwrap();
        assert_eq!(
            (b["phoneNumber"].as_str(), b["status"].as_str()),
            (Some("+14155550100"), Some("pending"))
        );
    }
    let swiss = report(
        &s,
        &s.api.base,
        "198.51.100.9",
        json!({"phoneNumber": "004930901820", "region": "CH", "category": "robocall"}),
    )
    .await;
    assert_eq!(
        swiss.json::<Value>().await.unwrap()["phoneNumber"],
        "+4930901820"
    );
    s.projected().await;

    let n = lookup(&s, "+14155550100").await;
    assert_eq!(n["status"], "reported");
    assert_eq!(
        (n["pendingReports"].as_i64(), n["approvedReports"].as_i64()),
        (Some(3), Some(0))
    );
    assert_eq!(n["categories"], json!({"scam": 2, "spam": 1}));
    assert!(n["lastReportedAt"].is_string());
    // Another spelling in the path, with a region.
    let same = s
        .http
        .get(s.url("/api/v1/client/phones/(415)%20555-0100?region=US"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        same.json::<Value>().await.unwrap()["phoneNumber"],
        "+14155550100"
    );
    let unknown = lookup(&s, "+12025550123").await;
    assert_eq!(
        (
            unknown["status"].as_str(),
            unknown["pendingReports"].as_i64()
        ),
        (Some("unknown"), Some(0))
    );

    let pending = list(&s, &token, "status=pending&q=415").await;
    let items = pending["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["distinctIps"], 3);
    let ids: Vec<String> = items
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();

    assert_eq!(act(&s, &token, &ids[0], "approve").await, StatusCode::OK);
    assert_eq!(
        act(&s, &token, &ids[0], "approve").await,
        StatusCode::CONFLICT,
        "approving twice"
    );
    assert_eq!(act(&s, &token, &ids[1], "reject").await, StatusCode::OK);
    assert_eq!(
        act(&s, &token, &ids[1], "approve").await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        act(&s, &token, &ids[2], "delete").await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        act(&s, &token, &ids[2], "delete").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        act(&s, &token, &uuid::Uuid::new_v4().to_string(), "approve").await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        act(&s, &token, "not-an-id", "reject").await,
        StatusCode::NOT_FOUND
    );
    s.projected().await;

    let n = lookup(&s, "+14155550100").await;
    assert_eq!(n["status"], "dangerous");
    assert_eq!(
        (n["approvedReports"].as_i64(), n["pendingReports"].as_i64()),
        (Some(1), Some(0))
    );
    assert_eq!(
        list(&s, &token, "status=approved").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        list(&s, &token, "status=rejected").await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        list(&s, &token, "").await["items"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "deleted reports are gone"
    );
    let page = list(&s, &token, "limit=2").await;
    assert!(page["nextCursor"].is_string());

    // Workers read the number's standing from the `phone-reputation` bucket.
    let kv = s
        .js("api")
        .await
        .get_key_value("phone-reputation")
        .await
        .unwrap();
    let entry: Value =
        serde_json::from_slice(&kv.get("14155550100").await.unwrap().unwrap()).unwrap();
    assert_eq!(entry["status"], "dangerous");

    let r = s
        .http
        .get(s.url("/api/v1/admin/phones?status=maybe"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = s
        .http
        .get(s.url("/api/v1/admin/phones"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn one_ip_cannot_inflate_a_number() {
    let s = Stack::start().await;
    let token = admin(&s).await;
    for _ in 0..3 {
        let r = report(
            &s,
            &s.api.base,
            "203.0.113.7",
            json!({"phoneNumber": "+442079460958", "category": "harassment"}),
        )
        .await;
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    s.projected().await;
    let n = lookup(&s, "+442079460958").await;
    assert_eq!(
        n["pendingReports"], 1,
        "three reports from one IP count once"
    );
    let items = list(&s, &token, "q=2079460958").await;
    let items = items["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "every report is still recorded");
    assert_eq!(items[0]["distinctIps"], 1);
    assert_eq!(items.iter().filter(|i| i["counted"] == true).count(), 1);
}

#[tokio::test]
async fn bad_numbers_and_bodies_are_422_with_the_reason() {
    let s = Stack::start().await;
    let cases = [
        json!({"phoneNumber": "1-800-FLOWERS", "region": "US", "category": "spam"}),
        json!({"phoneNumber": "1".repeat(40), "region": "US", "category": "spam"}),
        json!({"phoneNumber": "+1 415 555", "category": "spam"}),
        json!({"phoneNumber": "4155550100", "category": "spam"}),
        json!({"phoneNumber": "4155550100", "region": "Atlantis", "category": "spam"}),
        json!({}),
        json!({"phoneNumber": "+14155550100", "category": "annoying"}),
        json!({"phoneNumber": "+14155550100", "category": "spam", "description": "x".repeat(2001)}),
        json!({"phoneNumber": 14155550100u64, "category": "spam"}),
    ];
    for (i, body) in cases.into_iter().enumerate() {
        let r = report(&s, &s.api.base, "198.51.100.50", body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "case {i}");
        let b: Value = r.json().await.unwrap();
        assert!(
            b["message"].as_str().is_some_and(|m| !m.is_empty()),
            "case {i}: {b}"
        );
    }
    let r = s
        .http
        .post(s.url("/api/v1/client/phones/report"))
        .header("content-type", "application/json")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for path in [
        "/api/v1/client/phones/abc",
        "/api/v1/client/phones/12345678901234567890123456789012345678901",
    ] {
        let r = s.http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    }
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'phone_number'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(n, 0);
}

async fn with_turnstile(s: &Stack, url: &str, secret: &str) -> Instance {
    let mut cfg = config(&s.db.url, &s.nats);
    cfg.turnstile_secret_key = Some(secret.to_owned().into());
    cfg.turnstile_verify_url = url.to_owned();
    let api = start_api(cfg).await;
    s.wait_ready(&api.base).await;
    api
}

#[tokio::test]
async fn public_writes_need_a_turnstile_token_verified_server_side() {
    let s = Stack::start().await;
    let fake = FakeTurnstile::start().await.unwrap();
    let api = with_turnstile(&s, &fake.url, &fake.secret).await;
    let body = |token: Option<&str>| json!({"phoneNumber": "+14155550100", "category": "scam", "turnstileToken": token});

    for token in [None, Some(""), Some("forged")] {
        let r = report(&s, &api.base, "198.51.100.60", body(token)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{token:?}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "captcha_failed");
    }
    let good = FakeTurnstile::pass();
    assert_eq!(
        report(&s, &api.base, "198.51.100.60", body(Some(&good)))
            .await
            .status(),
        StatusCode::CREATED
    );
    let reused = report(&s, &api.base, "198.51.100.60", body(Some(&good))).await;
    assert_eq!(reused.status(), StatusCode::FORBIDDEN, "a token works once");
    for token in ["internal", "crash"] {
        let r = report(&s, &api.base, "198.51.100.60", body(Some(token))).await;
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE, "{token}");
        assert!(r.headers().contains_key("retry-after"));
    }
    assert!(fake.calls.load(std::sync::atomic::Ordering::SeqCst) >= 5);
    api.stop().await;

    let wrong_secret = with_turnstile(&s, &fake.url, "not-the-secret").await;
    let r = report(
        &s,
        &wrong_secret.base,
        "198.51.100.61",
        body(Some(&FakeTurnstile::pass())),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "our misconfiguration is not the user's fault"
    );
    wrong_secret.stop().await;

    let unreachable = with_turnstile(
        &s,
        &format!("http://127.0.0.1:{}/siteverify", testkit::free_port()),
        "x",
    )
    .await;
    let r = report(
        &s,
        &unreachable.base,
        "198.51.100.62",
        body(Some(&FakeTurnstile::pass())),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    unreachable.stop().await;
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PhoneReported'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(n, 1, "only the verified report was recorded");
}

#[tokio::test]
async fn public_endpoints_are_rate_limited_per_ip() {
    let s = Stack::start().await;
    let mut cfg = config(&s.db.url, &s.nats);
    cfg.rate_limit_public_writes_per_minute = 3;
    cfg.rate_limit_public_reads_per_minute = 5;
    let api = start_api(cfg).await;
    s.wait_ready(&api.base).await;
    let body = json!({"phoneNumber": "+14155550100", "category": "spam"});
    let statuses: Vec<u16> = futures::future::join_all(
        (0..3).map(|_| report(&s, &api.base, "198.51.100.70", body.clone())),
    )
    .await
    .iter()
    .map(|r| r.status().as_u16())
    .collect();
    assert!(
        statuses.contains(&201) && statuses.contains(&429),
        "{statuses:?}"
    );
    let limited = report(&s, &api.base, "198.51.100.70", body.clone()).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert_eq!(
        report(&s, &api.base, "198.51.100.71", body).await.status(),
        StatusCode::CREATED,
        "per IP"
    );

    let mut read_statuses = Vec::new();
    for _ in 0..4 {
        let r = s
            .http
            .get(format!("{}/api/v1/client/phones/+14155550100", api.base))
            .header("x-forwarded-for", "198.51.100.72")
            .send()
            .await
            .unwrap();
        read_statuses.push(r.status().as_u16());
    }
    assert!(read_statuses.contains(&429), "{read_statuses:?}");
    api.stop().await;
}
