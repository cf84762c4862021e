//! The web pages: server-rendered minijinja templates (autoescaped) with a little vanilla JS,
//! all compiled into the binary (`api/web/`), nothing loaded from elsewhere.
//!
//! ```text
//!  /             home, or the public blacklist on BLACKLIST_HOST
//!  /check[/id]   call check: upload (presigned PUT, progress), live queue position (SSE), verdict
//!  /numbers      look a number up, report one
//!  /blacklist    public blacklist (server-rendered, works without JS, shareable search URLs)
//!  /ban-notice   what a banned user sees; /static/ban-embed.js is the snippet for host platforms
//!  /admin        dashboard (login, reviews, reports, phones, workers, queue)
//! ```

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{context, Environment};
use std::sync::OnceLock;

use crate::app::AppState;
use crate::paging::PageQuery;
use crate::queries::BlacklistQuery;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../web/layout.html")),
    ("home.html", include_str!("../web/home.html")),
    ("check.html", include_str!("../web/check.html")),
    ("numbers.html", include_str!("../web/numbers.html")),
    ("blacklist.html", include_str!("../web/blacklist.html")),
    (
        "blacklist_user.html",
        include_str!("../web/blacklist_user.html"),
    ),
    ("ban_notice.html", include_str!("../web/ban_notice.html")),
    ("privacy.html", include_str!("../web/privacy.html")),
    ("terms.html", include_str!("../web/terms.html")),
    ("admin.html", include_str!("../web/admin.html")),
];

const STATIC: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../web/static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/app.js"),
    ),
    (
        "check.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/check.js"),
    ),
    (
        "numbers.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/numbers.js"),
    ),
    (
        "blacklist.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/blacklist.js"),
    ),
    (
        "ban-notice.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/ban-notice.js"),
    ),
    (
        "ban-embed.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/ban-embed.js"),
    ),
    (
        "report-embed.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/report-embed.js"),
    ),
    (
        "admin.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/static/admin.js"),
    ),
];

fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Every template is HTML: escape everything users wrote.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .expect("web templates are valid");
        }
        env
    })
}

fn render(name: &str, ctx: minijinja::Value) -> Response {
    match env().get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template = name, "page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<h1>Something went wrong</h1>".to_string()),
            )
                .into_response()
        }
    }
}

fn on_blacklist_host(s: &AppState, headers: &HeaderMap) -> bool {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let host = host.split(':').next().unwrap_or_default();
    s.web
        .blacklist_host
        .as_deref()
        .is_some_and(|b| !b.is_empty() && b.eq_ignore_ascii_case(host))
}

pub async fn home(
    State(s): State<AppState>,
    crate::client_ip::ClientIp(ip): crate::client_ip::ClientIp,
    headers: HeaderMap,
    query: Query<BlacklistQuery>,
) -> Response {
    if on_blacklist_host(&s, &headers) {
        return blacklist_page(&s, ip, query.0, "/").await;
    }
    render("home.html", context! {})
}

pub async fn check(State(s): State<AppState>) -> Response {
    render(
        "check.html",
        context! { turnstile_site_key => s.web.turnstile_site_key.clone(), task_id => "", max_upload_bytes => s.max_upload_bytes },
    )
}

pub async fn check_task(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let id = uuid::Uuid::parse_str(&id)
        .map(|u| u.to_string())
        .unwrap_or_default();
    render(
        "check.html",
        context! { turnstile_site_key => s.web.turnstile_site_key.clone(), task_id => id, max_upload_bytes => s.max_upload_bytes },
    )
}

pub async fn numbers(State(s): State<AppState>) -> Response {
    render(
        "numbers.html",
        context! { turnstile_site_key => s.web.turnstile_site_key.clone() },
    )
}

/// Under the same per-IP read limit as `GET /report/blacklist` (it runs the same query).
async fn blacklist_page(
    s: &AppState,
    ip: std::net::IpAddr,
    query: BlacklistQuery,
    base_path: &str,
) -> Response {
    if let Err(e) = crate::ratelimit::rate_limit(&s.public_reads, ip) {
        return e.into_response();
    }
    let shown = BlacklistQuery {
        q: query.q.clone(),
        category: query.category.clone(),
        from: query.from,
        to: query.to,
        page: PageQuery {
            limit: Some("48".into()),
            cursor: query.page.cursor.clone(),
        },
    };
    match crate::queries::blacklist(s, &shown).await {
        Ok(v) => render(
            "blacklist.html",
            context! {
                entries => minijinja::Value::from_serialize(&v.blacklist),
                q => query.q.clone().unwrap_or_default(),
                count => v.count,
                next_cursor => v.next_cursor,
                base_path => base_path,
            },
        ),
        Err(e) => e.into_response(),
    }
}

pub async fn blacklist(
    State(s): State<AppState>,
    crate::client_ip::ClientIp(ip): crate::client_ip::ClientIp,
    query: Query<BlacklistQuery>,
) -> Response {
    blacklist_page(&s, ip, query.0, "/blacklist").await
}

/// `/blacklist/{userId}`: one banned user's public entry, a page to share (404 for anyone not
/// permanently banned).
pub async fn blacklist_user(
    State(s): State<AppState>,
    crate::client_ip::ClientIp(ip): crate::client_ip::ClientIp,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = crate::ratelimit::rate_limit(&s.public_reads, ip) {
        return e.into_response();
    }
    let profile = match uuid::Uuid::parse_str(id.trim()) {
        Ok(id) => crate::queries::blacklisted(&s, &id.to_string()).await,
        Err(_) => Ok(None),
    };
    match profile {
        Ok(Some(p)) => render(
            "blacklist_user.html",
            context! {
                e => minijinja::Value::from_serialize(&p.entry),
                categories => minijinja::Value::from_serialize(&p.reports_by_category),
                base => s.public_base_url.clone(),
            },
        ),
        Ok(None) => {
            let mut page = render("blacklist_user.html", context! { missing => true });
            *page.status_mut() = StatusCode::NOT_FOUND;
            page
        }
        Err(e) => e.into_response(),
    }
}

/// What the pages say about retention, from the configured periods (the janitor's).
fn periods(s: &AppState) -> minijinja::Value {
    context! {
        recording_days => s.retention.recording_days,
        queue_days => 7,
        auto_ban_threshold => s.auto_ban_threshold,
    }
}

/// `/privacy`: what is kept, for how long and why — from the configured periods.
pub async fn privacy(State(s): State<AppState>) -> Response {
    render("privacy.html", periods(&s))
}

/// `/terms`: the rules of reports, bans, appeals and the blacklist.
pub async fn terms(State(s): State<AppState>) -> Response {
    render("terms.html", periods(&s))
}

pub async fn ban_notice() -> Response {
    render("ban_notice.html", context! {})
}

pub async fn admin() -> Response {
    render("admin.html", context! {})
}

pub async fn asset(Path(file): Path<String>) -> Response {
    match STATIC.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
