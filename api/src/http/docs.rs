//! `/docs`: the OpenAPI document generated from the code (`super::openapi`) and a readable page
//! made from it on the server (self-contained: no scripts or styles from elsewhere).

use axum::http::header;
use axum::response::{Html, IntoResponse};
use std::sync::LazyLock;

use serde_json::Value;

/// The document as served (and as `api/openapi.json` holds it), made once.
pub fn openapi_json() -> &'static str {
    static DOC: LazyLock<String> =
        LazyLock::new(
            || match serde_json::to_string_pretty(&super::openapi::document()) {
                Ok(json) => json + "\n",
                Err(e) => {
                    tracing::error!(error = %e, "the OpenAPI document does not serialize");
                    "{}".into()
                }
            },
        );
    &DOC
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], openapi_json())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn text(v: &Value) -> String {
    esc(v.as_str().unwrap_or_default())
}

/// Renders the document as one HTML page, grouped by tag.
pub fn render(doc: &Value) -> String {
    let mut by_tag: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                    continue;
                }
                let tag = op["tags"][0].as_str().unwrap_or("other").to_owned();
                let mut html = format!(
                    "<section class=op><h3><span class='m {m}'>{M}</span> <code>{p}</code></h3><p>{s}</p>",
                    m = esc(method),
                    M = esc(&method.to_uppercase()),
                    p = esc(path),
                    s = text(&op["summary"]),
                );
                if let Some(d) = op["description"].as_str() {
                    html.push_str(&format!("<p class=d>{}</p>", esc(d)));
                }
                let names: Vec<String> = op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_object()?.keys().next().cloned())
                    .collect();
                if !names.is_empty() {
                    html.push_str(&format!(
                        "<p class=auth>Auth: {}</p>",
                        esc(&names.join(", "))
                    ));
                }
                if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                    html.push_str(
                        "<table><tr><th>parameter</th><th>in</th><th>description</th></tr>",
                    );
                    for p in params {
                        html.push_str(&format!(
                            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                            text(&p["name"]),
                            text(&p["in"]),
                            text(&p["description"])
                        ));
                    }
                    html.push_str("</table>");
                }
                if let Some(responses) = op["responses"].as_object() {
                    html.push_str("<ul class=r>");
                    for (code, r) in responses {
                        html.push_str(&format!(
                            "<li><b>{}</b> {}</li>",
                            esc(code),
                            text(&r["description"])
                        ));
                    }
                    html.push_str("</ul>");
                }
                html.push_str("</section>");
                by_tag.entry(tag).or_default().push(html);
            }
        }
    }
    let mut body = String::new();
    for (tag, ops) in &by_tag {
        body.push_str(&format!(
            "<h2 id='{t}'>{t}</h2>{}",
            ops.join(""),
            t = esc(tag)
        ));
    }
    let title = text(&doc["info"]["title"]);
    format!(
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width,initial-scale=1'>\
<title>{title} API</title><style>body{{font:15px/1.45 system-ui,sans-serif;max-width:980px;margin:0 auto;padding:1rem;color:#1d2330}}\
h2{{border-bottom:2px solid #e3e6ee;padding-top:1rem}}.op{{border:1px solid #e3e6ee;border-radius:8px;padding:.6rem 1rem;margin:.8rem 0}}\
.m{{display:inline-block;min-width:4.5em;text-align:center;border-radius:4px;color:#fff;font-size:.8em;padding:.1em .4em}}\
.get{{background:#2f7d32}}.post{{background:#1f5fbf}}.delete{{background:#b3261e}}.put,.patch{{background:#8a5a00}}\
table{{border-collapse:collapse;margin:.4rem 0}}td,th{{border:1px solid #e3e6ee;padding:.2rem .5rem;text-align:left}}.auth,.d{{color:#555}}</style></head>\
<body><h1>{title}</h1><p>{desc}</p><p>Machine-readable: <a href='/docs/openapi.json'>openapi.json</a></p>{body}</body></html>",
        desc = text(&doc["info"]["description"]),
    )
}

pub async fn page() -> Html<&'static str> {
    static PAGE: LazyLock<String> = LazyLock::new(|| {
        let doc: Value = serde_json::from_str(openapi_json()).unwrap_or(Value::Null);
        render(&doc)
    });
    Html(&PAGE)
}
