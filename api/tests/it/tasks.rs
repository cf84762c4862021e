//! Voice analysis, client side: presigned uploads to a real S3-compatible server, submission,
//! status with queue position.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::Stack;

async fn presign(s: &Stack, content_type: &str, length: u64) -> reqwest::Response {
    s.http
        .post(s.url("/api/v1/client/uploads/presigned-url"))
        .json(&json!({"contentType": content_type, "contentLength": length}))
        .send()
        .await
        .unwrap()
}

async fn put(s: &Stack, upload: &Value, body: Vec<u8>, content_type: &str) -> StatusCode {
    let mut req = s.http.put(upload["url"].as_str().unwrap()).body(body);
    for (k, v) in upload["headers"].as_object().unwrap() {
        if k.eq_ignore_ascii_case("content-type") {
            req = req.header(k, content_type);
        } else if !k.eq_ignore_ascii_case("content-length") {
            req = req.header(k, v.as_str().unwrap());
        }
    }
    req.send().await.unwrap().status()
}

async fn submit(s: &Stack, body: Value) -> reqwest::Response {
    s.http
        .post(s.url("/api/v1/client/tasks"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_upload_goes_straight_to_storage_and_is_submitted_once() {
    let s = Stack::start().await;
    let wav = worker::audio::tone_wav(1.0, 8000);
    let r = presign(&s, "audio/wav", wav.len() as u64).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let upload: Value = r.json().await.unwrap();
    assert_eq!(upload["method"], "PUT");
    assert!(upload["expiresAt"].is_string());
    let upload_id = upload["uploadId"].as_str().unwrap().to_owned();

    // Submitting before the upload: nothing there yet.
    let early = submit(&s, json!({"uploadId": upload_id})).await;
    assert_eq!(early.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        early.json::<Value>().await.unwrap()["error"],
        "upload_missing"
    );

    // The URL accepts only the signed type and exact length.
    assert!(
        !put(&s, &upload, wav[..wav.len() - 10].to_vec(), "audio/wav")
            .await
            .is_success(),
        "a shorter body was stored"
    );
    assert!(
        !put(&s, &upload, wav.clone(), "audio/mpeg")
            .await
            .is_success(),
        "another content type was stored"
    );
    assert!(put(&s, &upload, wav.clone(), "audio/wav")
        .await
        .is_success());
    assert_eq!(
        std::fs::read(s.s3.object_path(&format!("uploads/{upload_id}"))).unwrap(),
        wav
    );

    let body = json!({"uploadId": upload_id, "email": "ann@example.org", "callerNumber": "+1 415 555 0100", "language": "en"});
    let r = submit(&s, body.clone()).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let task: Value = r.json().await.unwrap();
    assert_eq!(task["taskId"], upload_id);
    assert_eq!(task["status"], "queued");
    assert_eq!(task["queuePosition"], 1);
    assert!(task["estimatedWaitSeconds"].as_i64().unwrap() > 0);
    assert_eq!(
        task["emailNotification"], false,
        "a short wait sends no email"
    );

    s.projected().await;
    let again = submit(&s, body).await;
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(
        again.json::<Value>().await.unwrap()["taskId"],
        upload_id,
        "idempotent per uploadId"
    );
    let submitted: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TaskSubmitted'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(submitted, 1);

    let status: Value = s
        .http
        .get(s.url(&format!("/api/v1/client/tasks/{upload_id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "queued");
    assert_eq!(status["queuePosition"], 1);
    assert_eq!(status["attempts"], 0);
    assert!(status["submittedAt"].is_string());

    // The email never reaches the stream (or the job a worker will see).
    let js = s.js("api").await;
    let history = crate::helpers::stream_contents(&js).await;
    let submitted = history
        .iter()
        .find(|(_, _, e)| e.event_type == "TaskSubmitted")
        .unwrap();
    assert!(submitted.2.payload.get("email").is_none());
    assert_eq!(submitted.2.payload["callerNumber"], "+14155550100");
}

#[tokio::test]
async fn bad_uploads_and_submissions_get_clear_errors() {
    let s = Stack::start().await;
    let r = presign(&s, "image/png", 100).await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = presign(&s, "audio/wav", 2 * 1024 * 1024).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = presign(&s, "audio/wav", 0).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    for body in [
        json!({}),
        json!({"uploadId": "nope"}),
        json!({"uploadId": uuid::Uuid::new_v4()}),
    ] {
        let r = submit(&s, body.clone()).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let upload: Value = presign(&s, "audio/wav", 10).await.json().await.unwrap();
    for (field, value) in [
        ("email", "not-an-email"),
        ("callerNumber", "call me"),
        ("language", "english please"),
    ] {
        let mut body = json!({"uploadId": upload["uploadId"]});
        body[field] = json!(value);
        assert_eq!(
            submit(&s, body).await.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{field}"
        );
    }
    let r = s
        .http
        .get(s.url(&format!("/api/v1/client/tasks/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = s
        .http
        .get(s.url("/api/v1/client/tasks/not-a-task"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// Uploads a 2-second WAV and submits it; returns the task id.
pub async fn upload_and_submit(s: &Stack, extra: Value) -> String {
    let wav = worker::audio::tone_wav(2.0, 8000);
    let upload: Value = presign(s, "audio/wav", wav.len() as u64)
        .await
        .json()
        .await
        .unwrap();
    assert!(put(s, &upload, wav, "audio/wav").await.is_success());
    let mut body = json!({"uploadId": upload["uploadId"]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = submit(s, body).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    r.json::<Value>().await.unwrap()["taskId"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub async fn task(s: &Stack, id: &str) -> Value {
    s.http
        .get(s.url(&format!("/api/v1/client/tasks/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn wait_status(s: &Stack, id: &str, status: &str, within: std::time::Duration) -> Value {
    testkit::eventually(within, || async {
        let t = task(s, id).await;
        (t["status"] == status).then_some(t)
    })
    .await
    .unwrap_or_else(|| panic!("task {id} never became {status}"))
}

#[tokio::test]
async fn a_submitted_recording_is_analysed_by_a_worker_end_to_end() {
    let s = Stack::start().await;
    let password = s.seed().await;
    let admin = s.token(&password).await;
    let r = s
        .http
        .post(s.url("/api/v1/admin/workers"))
        .bearer_auth(&admin)
        .json(&json!({"name": "w"}))
        .send()
        .await
        .unwrap();
    let token = r.json::<Value>().await.unwrap()["workerToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let w = worker::Worker::connect(&crate::workers::worker_config(&s, &token, None))
        .await
        .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(w.run(common::shutdown::stopped(rx)));

    let id = upload_and_submit(&s, json!({"callerNumber": "+14155550100"})).await;
    // Polled at once: queued (never a 404 while the read model catches up).
    let first = task(&s, &id).await;
    assert!(
        first["status"] == "queued"
            || first["status"] == "processing"
            || first["status"] == "completed",
        "{first}"
    );
    let done = wait_status(&s, &id, "completed", std::time::Duration::from_secs(30)).await;
    let result = &done["result"];
    assert_eq!(
        result["verdict"], "inconclusive",
        "no ASR configured: nothing to judge"
    );
    assert!((result["audio"]["durationSeconds"].as_f64().unwrap() - 2.0).abs() < 0.01);
    assert_eq!(
        result["callerNumber"]["phoneNumber"], "+14155550100",
        "{done}"
    );
    assert!(result["analyzer"]["name"].is_string() && result["analyzer"]["version"].is_string());
    assert_eq!(done["attempts"], 1);
    assert!(done["startedAt"].is_string() && done["completedAt"].is_string());
    let completed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TaskCompleted'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(completed, 1);
    let _ = stop.send(true);
    let _ = running.await;
}
