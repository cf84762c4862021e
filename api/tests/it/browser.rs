//! The web pages in a real browser: `e2e/pages.mjs` drives headless Chromium (Debian's
//! `chromium`, through playwright-core) through each page's main story against this stack.
//! `make test` installs both; screenshots land in `target/e2e-screenshots/`.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::Stack;
use crate::reports::{ban, review, User};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_works_in_a_real_browser() {
    let root = testkit::repo_root();
    let chromium = std::env::var("CHROMIUM_BIN").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: run `make test` (it installs Debian's chromium)"
    );
    assert!(
        root.join("e2e/node_modules/playwright-core").exists(),
        "e2e/node_modules is missing: run `make test` (npm ci in e2e/)"
    );

    let s = Stack::start().await;
    let password = s.seed().await;
    let admin = s.token(&password).await;
    // A worker, so a call check gets its verdict.
    let r = s
        .http
        .post(s.url("/api/v1/admin/workers"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "w"}))
        .send()
        .await
        .unwrap();
    let token = r.json::<serde_json::Value>().await.unwrap()["workerToken"]
        .as_str()
        .unwrap()
        .to_owned();
    // It hears with the real speech model, so the call check shows a real verdict.
    let mut wcfg = crate::workers::worker_config(&s, &token, None);
    wcfg.analysis.asr_engine = "whisper".into();
    wcfg.analysis.whisper_model = std::env::var_os("WHISPER_MODEL").map(Into::into);
    let w = worker::Worker::connect(&wcfg).await.unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(w.run(common::shutdown::stopped(rx)));
    // A permanently banned user whose name is a script, and one awaiting review.
    let evil = User::new("<script>alert(1)</script>", "203.0.113.160");
    ban(&s, &evil).await;
    let pending = User::new("Pending Pat", "203.0.113.161");
    ban(&s, &pending).await;
    s.projected().await;
    assert_eq!(
        review(&s, &admin, evil.id, "permanent").await.status(),
        StatusCode::OK
    );
    // A number listed as dangerous (a report a moderator approved), for its owner to dispute.
    let r = s
        .http
        .post(s.url("/api/v1/client/phones/report"))
        .json(&serde_json::json!({"phoneNumber": "+14155550177", "category": "scam"}))
        .send()
        .await
        .unwrap();
    let report = r.json::<serde_json::Value>().await.unwrap()["reportId"]
        .as_str()
        .unwrap()
        .to_owned();
    s.projected().await;
    let r = s
        .http
        .post(s.url(&format!("/api/v1/admin/phones/{report}/approve")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    s.projected().await;

    // Browsers reach the local object store through the api's upload relay (it has no CORS).
    let mut cfg = crate::helpers::config_with_s3(&s.db.url, &s.nats, &s.s3);
    cfg.uploads_via_api = true;
    // A host platform's page (served by the browser test itself) embeds the ban notice.
    cfg.web.host_platform_origins = vec!["http://localhost:9".into()];
    let site = crate::helpers::start_api(cfg).await;
    s.wait_ready(&site.base).await;
    let dir = testkit::TempDir::new("bl-e2e");
    let call = dir.0.join("call.flac");
    std::fs::copy(root.join("worker/tests/fixtures/speech-scam.flac"), &call).unwrap();
    let shots = root.join("target/e2e-screenshots");
    let out = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new("node")
            .arg("--test")
            .arg("--test-concurrency=1")
            .arg(root.join("e2e/pages.mjs"))
            .current_dir(root.join("e2e"))
            .env("BASE_URL", &site.base)
            .env("ADMIN_PASSWORD", &password)
            .env("BANNED_TOKEN", evil.token.clone())
            .env("BANNED_NAME", "<script>alert(1)</script>")
            .env("PENDING_NAME", "Pending Pat")
            .env("PENDING_TOKEN", pending.token.clone())
            .env("REPORTER_TOKEN", User::new("Rita", "203.0.113.170").token)
            .env("REPORT_TARGET", uuid::Uuid::new_v4().to_string())
            .env("CALL_PATH", &call)
            .env("DANGEROUS_NUMBER", "+14155550177")
            .env("SHOTS_DIR", &shots)
            .env("CHROMIUM_BIN", &chromium)
            .output(),
    )
    .await
    .expect("the browser tests finished in time")
    .unwrap();
    let _ = stop.send(true);
    let _ = running.await;
    site.stop().await;
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "browser tests failed:\n{report}");
    for shot in [
        "check",
        "numbers",
        "blacklist",
        "ban-notice",
        "admin-stats",
        "admin-pending",
        "admin-workers",
        "admin-queue",
    ] {
        assert!(
            shots.join(format!("{shot}.png")).exists(),
            "no screenshot of {shot}"
        );
    }
}
