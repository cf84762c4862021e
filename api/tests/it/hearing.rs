//! The voice product hears (issue 9), end to end through HTTP, NATS and the object store, with
//! the real speech model: a spoken scam call uploaded as a person would is flagged with its
//! evidence in time; the caller's number gets the evidence in moderation; admins re-analyse
//! stored recordings and the task keeps both results.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::Stack;
use crate::tasks::{task, upload_file_and_submit, wait_status};

fn speech_fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../worker/tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A worker with the real Whisper model (WHISPER_MODEL, set by `make test`).
async fn hearing_worker(
    s: &Stack,
    admin: &str,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let token = crate::tasks::register_worker(s, admin, "hearing").await;
    let mut cfg = crate::workers::worker_config(s, &token, None);
    cfg.analysis.asr_engine = "whisper".into();
    cfg.analysis.whisper_model = Some(
        std::env::var_os("WHISPER_MODEL")
            .expect("WHISPER_MODEL is not set: run the tests with `make test`")
            .into(),
    );
    let w = worker::Worker::connect(&cfg).await.unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(w.run(common::shutdown::stopped(rx)));
    (stop, running)
}

async fn admin_get(s: &Stack, admin: &str, path: &str) -> Value {
    let r = s
        .http
        .get(s.url(path))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoken_scam_call_is_flagged_its_number_gets_evidence_and_a_reanalysis_keeps_both_results(
) {
    let s = Stack::start().await;
    let admin = s.token(&s.seed().await).await;
    let (stop, running) = hearing_worker(&s, &admin).await;
    let number = "+14155550142";

    let audio = speech_fixture("speech-scam.flac");
    let id = upload_file_and_submit(
        &s,
        audio.clone(),
        "audio/flac",
        json!({"callerNumber": number}),
    )
    .await;
    let done = wait_status(&s, &id, "completed", Duration::from_secs(120)).await;
    let result = &done["result"];
    assert_eq!(result["verdict"], "scam", "{done:#}");
    assert_eq!(result["language"], "en");
    assert!(result["transcript"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("google play"));
    assert!(result["explanation"]
        .as_str()
        .unwrap()
        .starts_with("Likely a scam"));
    assert!(!result["segments"].as_array().unwrap().is_empty());
    for ind in result["indicators"].as_array().unwrap() {
        let span = &ind["spans"][0];
        let (a, b) = (
            span["start"].as_f64().unwrap(),
            span["end"].as_f64().unwrap(),
        );
        assert!(0.0 <= a && a < b && b <= 13.2, "{ind}");
    }
    assert!(result["analyzer"]["speechModel"]
        .as_str()
        .unwrap()
        .starts_with("whisper-base@"));

    // The player's recording: the bytes that were uploaded.
    let url = done["recordingUrl"].as_str().unwrap();
    let got = s.http.get(s.url(url)).send().await.unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap().to_vec(), audio);
    let missing = s
        .http
        .get(s.url(&format!(
            "/api/v1/client/tasks/{}/recording",
            uuid::Uuid::new_v4()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The caller's number: the evidence waits for a moderator; the number is reported, not listed.
    let lookup = testkit::eventually(Duration::from_secs(20), || async {
        let v: Value = s
            .http
            .get(s.url(&format!("/api/v1/client/phones/{number}")))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (v["flaggedCalls"] == 1).then_some(v)
    })
    .await
    .expect("the flagged call's evidence reaches the number");
    assert_eq!(lookup["status"], "reported", "{lookup}");
    let pending = admin_get(&s, &admin, "/api/v1/admin/phones?status=pending").await;
    let evidence = pending["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["phoneNumber"] == number)
        .cloned()
        .expect("the evidence is in the moderation queue");
    assert!(
        evidence["description"].as_str().unwrap().contains(&id),
        "{evidence}"
    );

    // Re-analysis: bad filters are refused; a good one re-runs the stored recording.
    for (body, code) in [
        (
            json!({"analyzerVersionBelow": "v2; DROP"}),
            "invalid_version",
        ),
        (json!({"verdict": "maybe"}), "invalid_verdict"),
        (json!({"limit": 0}), "invalid_limit"),
        (
            json!({"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
            "invalid_period",
        ),
        (json!({"bogus": 1}), ""),
    ] {
        let r = s
            .http
            .post(s.url("/api/v1/admin/tasks/reanalyse"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{body}: {}", r.status());
        let v: Value = r.json().await.unwrap_or_default();
        assert!(
            code.is_empty() || v["code"] == code || v.to_string().contains(code),
            "{body}: {v}"
        );
    }
    let none = s
        .http
        .post(s.url("/api/v1/admin/tasks/reanalyse"))
        .bearer_auth(&admin)
        .json(&json!({"analyzerVersionBelow": "1.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::ACCEPTED);
    assert_eq!(
        none.json::<Value>().await.unwrap()["requested"],
        0,
        "today's results are not below 1.0"
    );
    let r = s
        .http
        .post(s.url("/api/v1/admin/tasks/reanalyse"))
        .bearer_auth(&admin)
        .json(&json!({"analyzerVersionBelow": "9999.1", "verdict": "scam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let batch: Value = r.json().await.unwrap();
    assert_eq!(batch["requested"], 1, "{batch}");
    let again = testkit::eventually(Duration::from_secs(120), || async {
        let t = task(&s, &id).await;
        (t["previousResults"].as_array().map(Vec::len) == Some(1)
            && t.get("reanalysisPending").is_none())
        .then_some(t)
    })
    .await
    .expect("the re-analysis lands");
    assert_eq!(again["status"], "completed");
    assert_eq!(again["previousResults"][0]["result"]["verdict"], "scam");
    assert_eq!(again["result"]["verdict"], "scam");
    assert!(again["reanalysedAt"].is_string());
    let batches = admin_get(&s, &admin, "/api/v1/admin/tasks/reanalyses").await;
    let b = &batches["items"][0];
    assert_eq!(b["batchId"], batch["batchId"]);
    assert_eq!(
        (
            b["total"].as_i64(),
            b["done"].as_i64(),
            b["pending"].as_i64()
        ),
        (Some(1), Some(1), Some(0)),
        "{b}"
    );
    // The evidence is filed once, however often the call is judged a scam.
    let lookup: Value = s
        .http
        .get(s.url(&format!("/api/v1/client/phones/{number}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(lookup["flaggedCalls"], 1);
    let events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TaskReanalysed'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(events, 1);

    let _ = stop.send(true);
    let _ = running.await;
}
