//! Dependencies going away and coming back.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use testkit::{Db, Nats, Proxy};

use crate::helpers::{config, start_api, stream_contents, Stack};

#[tokio::test]
async fn nats_down_means_not_ready_but_commands_are_kept_and_published_on_return() {
    let mut s = Stack::start().await;
    let password = s.seed().await;
    s.projected().await;

    s.nats.kill().await;
    let not_ready = testkit::eventually(Duration::from_secs(10), || async {
        let r = s.http.get(s.url("/readyz")).send().await.ok()?;
        (r.status() == StatusCode::SERVICE_UNAVAILABLE && r.headers().contains_key("retry-after"))
            .then_some(())
    })
    .await;
    assert!(not_ready.is_some(), "/readyz stayed green without NATS");
    // Postgres holds the command; the outbox keeps it for later.
    assert_eq!(s.login(&password).await.status(), StatusCode::OK);
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(queued, 1);

    s.nats.restart().await.unwrap();
    s.wait_ready(&s.api.base.clone()).await;
    s.projected().await;
    let history = stream_contents(&s.js("api").await).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].2.event_type, "AdminLoggedIn");
    let logins: i64 = sqlx::query_scalar("SELECT login_count FROM admin_accounts")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(logins, 1);
}

#[tokio::test]
async fn postgres_down_is_a_503_with_retry_after_and_recovers_by_itself() {
    common::telemetry::init("text");
    let db = Db::fresh().await.unwrap();
    let nats = Nats::start().await.unwrap();
    let proxy = Proxy::start(db.upstream()).await.unwrap();
    let api = start_api(config(&db.url_via(&proxy), &nats)).await;
    let http = reqwest::Client::new();
    let ready = || {
        let req = http.get(api.url("/readyz")).send();
        async move { (req.await.ok()?.status() == StatusCode::OK).then_some(()) }
    };
    assert!(testkit::eventually(Duration::from_secs(20), ready)
        .await
        .is_some());
    let seed = http
        .post(api.url("/api/v1/admin/seed"))
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), StatusCode::CREATED);
    let password = seed.json::<Value>().await.unwrap()["password"]
        .as_str()
        .unwrap()
        .to_owned();
    let login = || {
        http.post(api.url("/api/v1/admin/login"))
            .form(&[("username", "admin"), ("password", &password)])
            .send()
    };

    proxy.cut();
    let r = login().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "service_unavailable"
    );
    let readyz = http.get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        http.get(api.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );

    proxy.heal();
    let back = testkit::eventually(Duration::from_secs(15), || async {
        (login().await.ok()?.status() == StatusCode::OK).then_some(())
    })
    .await;
    assert!(
        back.is_some(),
        "logins did not recover after Postgres returned"
    );
    assert!(testkit::eventually(Duration::from_secs(20), ready)
        .await
        .is_some());
    api.stop().await;
}
