//! The web pages over HTTP (their behaviour in a browser is tested with headless Chromium).

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{config_with_s3, start_api, Stack};
use crate::reports::{admin_token, ban, review, wait_refused, User};

async fn page(s: &Stack, base: &str, path: &str) -> (StatusCode, String, String) {
    let r = s.http.get(format!("{base}{path}")).send().await.unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (r.status(), ct, r.text().await.unwrap())
}

#[tokio::test]
async fn every_page_renders_and_assets_are_served() {
    let s = Stack::start().await;
    for path in [
        "/",
        "/check",
        "/numbers",
        "/blacklist",
        "/ban-notice",
        "/admin",
        "/check/3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    ] {
        let (status, ct, html) = page(&s, &s.api.base, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        assert!(
            html.contains("/static/app.css"),
            "{path} uses the shared design"
        );
        assert!(
            !html.contains("https://cdn."),
            "{path} loads nothing from elsewhere"
        );
    }
    let (status, ct, css) = page(&s, &s.api.base, "/static/app.css").await;
    assert_eq!((status, ct.starts_with("text/css")), (StatusCode::OK, true));
    assert!(!css.is_empty());
    for js in [
        "app.js",
        "check.js",
        "numbers.js",
        "blacklist.js",
        "ban-notice.js",
        "ban-embed.js",
        "admin.js",
    ] {
        let (status, ct, _) = page(&s, &s.api.base, &format!("/static/{js}")).await;
        assert_eq!(status, StatusCode::OK, "{js}");
        assert!(ct.starts_with("text/javascript"), "{js}");
    }
    assert_eq!(
        page(&s, &s.api.base, "/static/../Cargo.toml").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&s, &s.api.base, "/static/nothing.js").await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_public_blacklist_escapes_what_users_wrote_and_serves_its_own_host() {
    let s = Stack::start().await;
    let admin = admin_token(&s).await;
    let evil = User::new("<script>alert(1)</script>", "203.0.113.150");
    ban(&s, &evil).await;
    s.projected().await;
    assert_eq!(
        review(&s, &admin, evil.id, "permanent").await.status(),
        StatusCode::OK
    );
    s.projected().await;

    let (status, _, html) = page(&s, &s.api.base, "/blacklist?q=script").await;
    assert_eq!(status, StatusCode::OK);
    // minijinja's HTML escaping also escapes `/` (as &#x2f;).
    let escaped = [
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;",
    ];
    assert!(
        escaped.iter().any(|e| html.contains(e)),
        "the name is shown, escaped: {html}"
    );
    assert!(
        !html.contains("<script>alert(1)</script>"),
        "the name never becomes markup"
    );
    let (_, _, none) = page(&s, &s.api.base, "/blacklist?q=nobody-at-all").await;
    assert!(!none.contains("alert(1)"));

    // Its own host name serves it as the home page; the host platform's origin may call the API.
    let mut cfg = config_with_s3(&s.db.url, &s.nats, &s.s3);
    cfg.web.blacklist_host = Some("blacklist.example".into());
    cfg.web.host_platform_origins = vec!["https://host.example".into()];
    let site = start_api(cfg).await;
    s.wait_ready(&site.base).await;
    let home = s
        .http
        .get(format!("{}/", site.base))
        .header("host", "blacklist.example")
        .send()
        .await
        .unwrap();
    let home = home.text().await.unwrap();
    assert!(
        escaped.iter().any(|e| home.contains(e)),
        "the blacklist host serves the blacklist"
    );
    let preflight = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/report/check-ban", site.base),
        )
        .header("origin", "https://host.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://host.example"
    );
    let other = s
        .http
        .get(format!("{}/api/v1/report/blacklist", site.base))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    site.stop().await;

    // A banned user still reaches the notice and the blacklist, nothing else.
    assert!(wait_refused(&s, &s.api.base, "203.0.113.150", Duration::from_secs(5)).await);
    for (path, expected) in [
        ("/ban-notice", StatusCode::OK),
        ("/blacklist", StatusCode::OK),
        ("/static/app.css", StatusCode::OK),
        ("/check", StatusCode::FORBIDDEN),
    ] {
        let r = s
            .http
            .get(s.url(path))
            .header("x-forwarded-for", "203.0.113.150")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{path}");
    }
}

/// The hardening review (issue 10, item 10): no browser policies on pages, `/metrics` open in
/// production, the `/blacklist` page outside the read limit, any `X-Request-Id` echoed and stored.
#[tokio::test]
async fn pages_carry_browser_policies_and_public_surfaces_are_bounded() {
    let s = Stack::start().await;
    let mut cfg = crate::helpers::config_with_s3(&s.db.url, &s.nats, &s.s3);
    cfg.web.host_platform_origins = vec!["https://video.example".into()];
    cfg.rate_limit_public_reads_per_minute = 60; // bursts of 6
    cfg.metrics_token = Some("metrics-token-0123456789".to_owned().into());
    let site = crate::helpers::start_api(cfg).await;
    s.wait_ready(&site.base).await;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", site.base)).send();

    for path in [
        "/",
        "/check",
        "/numbers",
        "/admin",
        "/api/v1/report/blacklist",
    ] {
        let r = get(path).await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    let r = get("/ban-notice").await.unwrap();
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'self' https://video.example"),
        "{csp}"
    );
    assert!(r.headers().get("x-frame-options").is_none());

    // /metrics only with its token.
    assert_eq!(
        get("/metrics").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let r = http
        .get(format!("{}/metrics", site.base))
        .bearer_auth("metrics-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The blacklist page shares the JSON's read limit.
    let mut limited = false;
    for _ in 0..20 {
        if get("/blacklist").await.unwrap().status() == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
    }
    assert!(limited, "the /blacklist page has no read limit");

    // A plain request id is echoed; an oversized or odd one is replaced.
    let echo = |id: String| {
        http.get(format!("{}/healthz", site.base))
            .header("x-request-id", id)
            .send()
    };
    let r = echo("abc-123_DEF.4".into()).await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123_DEF.4");
    for bad in ["x".repeat(5000), "<script>".into(), "a b".into()] {
        let r = echo(bad.clone()).await.unwrap();
        let back = r.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(back, bad);
        assert!(uuid::Uuid::parse_str(&back).is_ok(), "{back}");
    }
}

/// In production, `/metrics` on the api's public port is closed without `METRICS_TOKEN`.
#[tokio::test]
async fn production_keeps_metrics_closed_without_a_token() {
    let s = Stack::start().await;
    let mut cfg = crate::helpers::config_with_s3(&s.db.url, &s.nats, &s.s3);
    cfg.app_env = "production".into();
    cfg.turnstile_secret_key = Some("unused-in-this-test".to_owned().into());
    let site = crate::helpers::start_api(cfg).await;
    s.wait_ready(&site.base).await;
    let r = reqwest::get(format!("{}/metrics", site.base))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// `/privacy` and `/terms` state the periods and the threshold this instance runs with, are
/// linked from every page, and a period outside its bounds stops the api at start.
#[tokio::test]
async fn privacy_and_terms_state_the_configured_periods() {
    let s = Stack::start().await;
    let mut cfg = config_with_s3(&s.db.url, &s.nats, &s.s3);
    cfg.retention.recording_days = 45;
    cfg.auto_ban_threshold = 6;
    let api = start_api(cfg).await;
    let (status, _, privacy) = page(&s, &api.base, "/privacy").await;
    assert_eq!(status, StatusCode::OK);
    assert!(privacy.contains("45 days"), "{privacy}");
    let (status, _, terms) = page(&s, &api.base, "/terms").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        terms.contains(r#"data-testid="terms-threshold">6<"#),
        "{terms}"
    );
    assert!(terms.contains("45 days after"), "{terms}");
    for path in ["/", "/blacklist", "/numbers", "/check"] {
        let (_, _, html) = page(&s, &api.base, path).await;
        assert!(
            html.contains(r#"href="/privacy""#) && html.contains(r#"href="/terms""#),
            "{path} lacks the footer links"
        );
    }
    // Reachable from a banned address, like the ban notice that links them.
    let target = User::new("Banned Bea", "203.0.113.95");
    ban(&s, &target).await;
    assert!(wait_refused(&s, &s.api.base, "203.0.113.95", Duration::from_secs(10)).await);
    let r = s
        .http
        .get(s.url("/privacy"))
        .header("x-forwarded-for", "203.0.113.95")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    api.stop().await;

    let mut cfg = crate::helpers::config(&s.db.url, &s.nats);
    cfg.retention.recording_days = 0;
    let err = api::Api::start(&cfg, api::passwords::Passwords::insecure_fast())
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("RECORDING_RETENTION_DAYS"),
        "{err}"
    );
}
