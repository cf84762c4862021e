//! `/docs`: the OpenAPI document generated from the code is served, and every operation it
//! names is routed (every route is documented by construction: the router is built from the
//! handlers' `#[utoipa::path]`s).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::Stack;

#[tokio::test]
async fn every_documented_operation_is_routed_and_the_docs_are_served() {
    let doc: Value = serde_json::from_str(api::http::docs::openapi_json()).expect("JSON");
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let s = Stack::start().await;
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let root = item["servers"][0]["url"] == "/";
        let concrete = path
            .replace("{phone_number}", "+14155550100")
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    uuid::Uuid::new_v4().to_string()
                } else {
                    part.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let url = if root {
            s.url(&concrete)
        } else {
            s.url(&format!("/api/v1{concrete}"))
        };
        for method in ["get", "post", "put", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            operations += 1;
            let req = s
                .http
                .request(method.to_uppercase().parse().unwrap(), &url)
                .header("content-type", "application/json")
                .body("{}");
            let resp = req.send().await.unwrap();
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !body.contains("no such endpoint"),
                "{method} {path} is documented but not routed: {status} {body}"
            );
        }
    }
    assert!(operations >= 37, "{operations} operations");

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
