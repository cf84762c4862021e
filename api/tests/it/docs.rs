//! `/docs`: the OpenAPI document covers every route the router serves.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::Stack;

/// (method, path) of every `.route(…)` call in the router source (balanced parentheses, so
/// calls rustfmt spreads over lines count too); `/api/v1` routes are relative to it.
fn routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../../src/http/mod.rs");
    // The HTML pages (fn web_pages) are not API operations.
    let src = &src[..src.find("fn web_pages").unwrap_or(src.len())];
    let mut out = BTreeSet::new();
    for (start, _) in src.match_indices(".route(") {
        let call = &src[start + ".route".len()..];
        let (mut depth, mut end) = (0, 0);
        for (i, c) in call.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &call[..end];
        let path = call.split('"').nth(1).unwrap().to_owned();
        for method in ["get", "post", "delete", "put", "patch"] {
            let called = call.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0 || !call[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if called {
                out.insert((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_route_is_documented_and_the_docs_are_served() {
    let doc: Value =
        serde_json::from_str(api::http::docs::OPENAPI).expect("api/openapi.json is JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| ["get", "post", "delete", "put", "patch"].contains(&k.as_str()))
        {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let served = routes();
    assert!(served.len() >= 30, "{served:?}");
    let missing: Vec<_> = served.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without documentation: {missing:?}"
    );

    let s = Stack::start().await;
    let page = s.http.get(s.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("/client/tasks") && html.contains("/report/user"));
    let json = s
        .http
        .get(s.url("/docs/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::OK);
    assert_eq!(json.json::<Value>().await.unwrap(), doc);
}

/// Every relative link in the README, the changelog and the docs names a file of the repository
/// (never `../shared`, never a file that was renamed or not written).
#[test]
fn every_relative_link_in_the_docs_names_a_file_that_exists() {
    let root = testkit::repo_root();
    let mut files = vec![root.join("README.md"), root.join("CHANGELOG.md")];
    for dir in ["docs", "eval", "eval/dev"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().is_some_and(|e| e == "md") {
                files.push(p);
            }
        }
    }
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // Markdown links: ](target) or ](target#anchor).
        for (i, _) in text.match_indices("](") {
            let rest = &text[i + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = rest[..end].split('#').next().unwrap_or_default().trim();
            if target.is_empty()
                || target.contains("://")
                || target.starts_with("mailto:")
                || target.contains(' ')
            {
                continue;
            }
            let path = file.parent().unwrap().join(target);
            if target.contains("../shared") || !path.exists() {
                broken.push(format!("{} → {target}", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to missing files:\n{}",
        broken.join("\n")
    );
}
