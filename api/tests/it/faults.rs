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

#[tokio::test]
async fn sigterm_lets_the_api_finish_and_loses_nothing() {
    let db = Db::fresh().await.unwrap();
    let nats = Nats::start().await.unwrap();
    let port = testkit::free_port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_api"))
        .arg("serve")
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &db.url)
        .env("NATS_URL", nats.url())
        .env("NATS_USER", "api")
        .env("NATS_PASSWORD", testkit::nats_password("api"))
        .env("ADMIN_JWT_SECRET", crate::helpers::JWT_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let ready = testkit::eventually(Duration::from_secs(30), || {
        let r = http.get(format!("{base}/readyz")).send();
        async move { (r.await.ok()?.status() == StatusCode::OK).then_some(()) }
    })
    .await;
    assert!(ready.is_some(), "api serve never became ready");
    let seed = http
        .post(format!("{base}/api/v1/admin/seed"))
        .send()
        .await
        .unwrap();
    assert_eq!(seed.status(), StatusCode::CREATED);
    // Requests racing the signal: each is either answered in full or refused at connect, never
    // cut off half-way or answered with a 5xx.
    let inflight: Vec<_> = (0..5)
        .map(|_| {
            let req = http
                .post(format!("{base}/api/v1/admin/login"))
                .form(&[("username", "nobody"), ("password", "x")]);
            tokio::spawn(async move {
                match req.send().await {
                    Ok(r) => Some((r.status(), r.json::<serde_json::Value>().await.is_ok())),
                    Err(e) => {
                        assert!(e.is_connect() || e.is_request(), "unexpected failure: {e}");
                        None
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    for r in inflight {
        if let Some((status, full_body)) = r.await.unwrap() {
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert!(full_body, "a response was cut off");
        }
    }
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
    // The seed's event is in Postgres and either published or still queued for the next relay.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    let js = async_nats::jetstream::new(nats.client("api").await.unwrap());
    let published = crate::helpers::stream_contents(&js).await.len() as i64;
    assert_eq!(stored, 1);
    assert_eq!(
        published + queued,
        1,
        "the event is published or still in the outbox, never lost"
    );
}
