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
    // Parameters are fine; the URL is signed for the base type.
    let r = presign(&s, "audio/webm;codecs=opus", 100).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let headers = r.json::<Value>().await.unwrap()["headers"].clone();
    assert_eq!(headers["content-type"], "audio/webm");
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
    upload_file_and_submit(s, worker::audio::tone_wav(2.0, 8000), "audio/wav", extra).await
}

/// Uploads `bytes` as a person would (presigned PUT) and submits the task; its id.
pub async fn upload_file_and_submit(
    s: &Stack,
    bytes: Vec<u8>,
    content_type: &str,
    extra: Value,
) -> String {
    let upload: Value = presign(s, content_type, bytes.len() as u64)
        .await
        .json()
        .await
        .unwrap();
    assert!(put(s, &upload, bytes, content_type).await.is_success());
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

    let js_api = s.js("api").await;
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

    // Results for tasks this worker does not hold are refused (and logged): a second completion
    // of a finished task, a completion of a task that does not exist.
    let (worker_id, client) = worker_client(&s, &token).await;
    let late: events::task::AnalysisResult = serde_json::from_value(result.clone()).unwrap();
    for task_id in [id.parse().unwrap(), uuid::Uuid::new_v4()] {
        let forged = events::task::WorkerResult::Completed {
            task_id,
            worker_id,
            delivery: None,
            result: Box::new(late.clone()),
        };
        publish_result(&client, worker_id, &forged).await;
    }
    let drained = testkit::eventually(std::time::Duration::from_secs(10), || {
        let js = js_api.clone();
        async move {
            let mut c = js
                .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
                    "intake", "RESULTS",
                )
                .await
                .ok()?;
            let info = c.info().await.ok()?;
            (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
        }
    })
    .await;
    assert!(drained.is_some(), "the intake did not settle");
    let completed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TaskCompleted'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(completed, 1, "late or foreign results changed nothing");
    let _ = stop.send(true);
    let _ = running.await;
}

/// Shortens the workers consumer's ack_wait (and max_deliver) so redelivery shows in seconds.
async fn tighten_workers_consumer(s: &Stack, ack_wait: std::time::Duration, max_deliver: i64) {
    let js = s.js("api").await;
    let stream = js.get_stream("TASKS").await.unwrap();
    let mut cfg = events::topology::workers_consumer();
    cfg.ack_wait = ack_wait;
    cfg.max_deliver = max_deliver;
    stream.update_consumer(cfg).await.unwrap();
}

/// A worker's own NATS connection (its token, its private inbox), as the worker binary makes it.
pub async fn worker_client(s: &Stack, token: &str) -> (uuid::Uuid, async_nats::Client) {
    let id = events::worker::token_worker_id(token).unwrap();
    let client = async_nats::ConnectOptions::with_token(token.to_owned())
        .custom_inbox_prefix(events::worker::inbox_prefix(id))
        .connect(s.nats.url())
        .await
        .unwrap();
    (id, client)
}

/// Publishes `result` on `worker`'s result subject and waits until JetStream stored it.
pub async fn publish_result(
    client: &async_nats::Client,
    worker: uuid::Uuid,
    result: &events::task::WorkerResult,
) {
    async_nats::jetstream::new(client.clone())
        .publish(
            events::task::results_subject(worker),
            serde_json::to_vec(result).unwrap().into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
}

pub async fn register_worker(s: &Stack, admin: &str, name: &str) -> String {
    let r = s
        .http
        .post(s.url("/api/v1/admin/workers"))
        .bearer_auth(admin)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["workerToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn spawn_worker(
    w: worker::Worker,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, rx) = tokio::sync::watch::channel(false);
    (stop, tokio::spawn(w.run(common::shutdown::stopped(rx))))
}

/// An OpenAI-compatible ASR whose first call never answers (the worker holding it "hangs").
async fn hanging_then_answering_asr() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = axum::Router::new()
        .route(
            "/v1/audio/transcriptions",
            // The handler reads the whole upload before answering: answering first makes the
            // server close the connection under a client still sending ("error sending request").
            axum::routing::post(move |_audio: axum::body::Bytes| {
                let calls = calls.clone();
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        tokio::time::sleep(std::time::Duration::from_secs(300)).await;
                    }
                    axum::Json(json!({"text": "please pay with gift cards right now"}))
                }
            }),
        )
        .route(
            "/calls",
            axum::routing::get(move || {
                let n = counted.load(Ordering::SeqCst);
                async move { n.to_string() }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// Waits until the first worker is inside the hanging ASR call (past decoding, in the analysis
/// proper), so a kill or a revocation hits it mid-analysis, never before.
async fn wait_until_hanging(asr: &str) {
    let http = reqwest::Client::new();
    let hanging = testkit::eventually(std::time::Duration::from_secs(30), || {
        let http = http.clone();
        async move {
            let n: usize = http
                .get(format!("{asr}/calls"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?
                .parse()
                .ok()?;
            (n >= 1).then_some(())
        }
    })
    .await;
    assert!(hanging.is_some(), "the worker never reached the ASR");
}

async fn count_events(s: &Stack, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(&s.db.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_dying_mid_analysis_loses_nothing_and_another_finishes_once() {
    let s = Stack::start().await;
    let admin = s.token(&s.seed().await).await;
    tighten_workers_consumer(&s, std::time::Duration::from_secs(2), 5).await;
    let asr = hanging_then_answering_asr().await;
    let token_a = register_worker(&s, &admin, "doomed").await;
    let token_b = register_worker(&s, &admin, "survivor").await;
    let a = worker::Worker::connect(&crate::workers::worker_config(
        &s,
        &token_a,
        Some(asr.clone()),
    ))
    .await
    .unwrap();
    let a_id = a.id;
    let (_stop_a, run_a) = spawn_worker(a);

    let id = upload_and_submit(&s, json!({})).await;
    let processing = wait_status(&s, &id, "processing", std::time::Duration::from_secs(20)).await;
    wait_until_hanging(&asr).await;
    assert_eq!(processing["attempts"], 1);
    // The worker dies mid-analysis: its task and its connection are gone, no ack ever sent.
    run_a.abort();
    let _ = run_a.await;

    let b = worker::Worker::connect(&crate::workers::worker_config(&s, &token_b, Some(asr)))
        .await
        .unwrap();
    let b_id = b.id;
    let (stop_b, run_b) = spawn_worker(b);
    let done = wait_status(&s, &id, "completed", std::time::Duration::from_secs(30)).await;
    // "please pay with gift cards right now": flagged (the exact score belongs to the analyzer's
    // own tests; here what matters is that the survivor's result is the one that landed).
    let verdict = done["result"]["verdict"].as_str().unwrap_or_default();
    assert!(matches!(verdict, "scam" | "suspicious"), "{done}");
    s.projected().await;
    let finished_by: uuid::Uuid =
        sqlx::query_scalar("SELECT worker_id FROM voice_tasks WHERE task_id = $1::uuid")
            .bind(&id)
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(finished_by, b_id);
    assert_ne!(finished_by, a_id);
    assert_eq!(
        count_events(&s, "TaskCompleted").await,
        1,
        "exactly one completion"
    );
    assert!(done["attempts"].as_i64().unwrap() >= 2, "{done}");
    let _ = stop_b.send(true);
    let _ = run_b.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_last_delivery_the_task_fails_and_an_admin_retry_runs_it_once_more() {
    let s = Stack::start().await;
    let admin = s.token(&s.seed().await).await;
    tighten_workers_consumer(&s, std::time::Duration::from_millis(800), 2).await;
    let care = janitor::tasks::TaskCare::new(
        s.db.pool.clone(),
        s.js("janitor").await,
        api::storage::Storage::new(&crate::helpers::config_with_s3(&s.db.url, &s.nats, &s.s3).s3),
    );
    let (stop_care, care_rx) = tokio::sync::watch::channel(false);
    let care = tokio::spawn(care.run(common::shutdown::stopped(care_rx)));

    let id = upload_and_submit(&s, json!({})).await;
    // A worker that takes the job and never answers, twice.
    let token = register_worker(&s, &admin, "silent").await;
    let silent = async_nats::ConnectOptions::with_token(token.clone())
        .custom_inbox_prefix(events::worker::inbox_prefix(
            events::worker::token_worker_id(&token).unwrap(),
        ))
        .connect(s.nats.url())
        .await
        .unwrap();
    let sjs = async_nats::jetstream::new(silent);
    let consumer: async_nats::jetstream::consumer::PullConsumer = sjs
        .get_consumer_from_stream("workers", "TASKS")
        .await
        .unwrap();
    let mut taken = 0;
    for _ in 0..20 {
        let mut batch = consumer
            .fetch()
            .max_messages(1)
            .expires(std::time::Duration::from_secs(1))
            .messages()
            .await
            .unwrap();
        while let Some(m) = futures::StreamExt::next(&mut batch).await {
            m.unwrap();
            taken += 1;
        }
        if taken >= 2 {
            break;
        }
    }
    assert_eq!(taken, 2, "the job was delivered twice");
    // Workers keep asking for work; the server notices the exhausted job on the next pull.
    let mut idle = consumer
        .fetch()
        .max_messages(1)
        .expires(std::time::Duration::from_secs(2))
        .messages()
        .await
        .unwrap();
    assert!(
        futures::StreamExt::next(&mut idle).await.is_none(),
        "a third delivery"
    );
    let failed = wait_status(&s, &id, "failed", std::time::Duration::from_secs(20)).await;
    assert!(
        failed["error"].as_str().unwrap().contains("2 deliveries"),
        "{failed}"
    );
    let stats: Value = s
        .http
        .get(s.url("/api/v1/admin/queue/stats"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["failed"], 1);
    let list: Value = s
        .http
        .get(s.url("/api/v1/admin/tasks?status=failed"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);

    // After a fix: retry. It runs again, exactly once, on a healthy worker.
    tighten_workers_consumer(&s, std::time::Duration::from_secs(30), 5).await;
    let good = worker::Worker::connect(&crate::workers::worker_config(
        &s,
        &register_worker(&s, &admin, "fixed").await,
        None,
    ))
    .await
    .unwrap();
    let (stop_w, run_w) = spawn_worker(good);
    let r = s
        .http
        .post(s.url(&format!("/api/v1/admin/tasks/{id}/retry")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    wait_status(&s, &id, "completed", std::time::Duration::from_secs(30)).await;
    let again = s
        .http
        .post(s.url(&format!("/api/v1/admin/tasks/{id}/retry")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::CONFLICT,
        "only failed tasks are retried"
    );
    let unknown = s
        .http
        .post(s.url(&format!(
            "/api/v1/admin/tasks/{}/retry",
            uuid::Uuid::new_v4()
        )))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let all: Value = s
        .http
        .post(s.url("/api/v1/admin/tasks/retry-all-failed"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["requeued"], 0);
    assert_eq!(count_events(&s, "TaskRequeued").await, 1);
    assert_eq!(count_events(&s, "TaskCompleted").await, 1);
    let _ = stop_w.send(true);
    let _ = run_w.await;
    let _ = stop_care.send(true);
    let _ = care.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_lost_from_jetstream_is_dispatched_again() {
    let s = Stack::start().await;
    let admin = s.token(&s.seed().await).await;
    let id = upload_and_submit(&s, json!({})).await;
    let js = s.js("api").await;
    let mut tasks = js.get_stream("TASKS").await.unwrap();
    let dispatched = testkit::eventually(std::time::Duration::from_secs(10), || {
        let js = js.clone();
        async move {
            let n = js
                .get_stream("TASKS")
                .await
                .ok()?
                .info()
                .await
                .ok()?
                .state
                .messages;
            (n == 1).then_some(())
        }
    })
    .await;
    assert!(dispatched.is_some());
    tasks.purge().await.unwrap();
    assert_eq!(tasks.info().await.unwrap().state.messages, 0);
    // An operator's slip: the workers' consumer is gone too. The janitor's pass brings it back.
    tasks.delete_consumer("workers").await.unwrap();
    s.projected().await;

    let mut care = janitor::tasks::TaskCare::new(
        s.db.pool.clone(),
        s.js("janitor").await,
        api::storage::Storage::new(&crate::helpers::config_with_s3(&s.db.url, &s.nats, &s.s3).s3),
    );
    care.grace = std::time::Duration::ZERO;
    assert_eq!(care.reconcile().await.unwrap(), (1, 0));
    assert_eq!(tasks.info().await.unwrap().state.messages, 1);
    assert!(
        tasks.consumer_info("workers").await.is_ok(),
        "the workers' consumer was recreated"
    );
    assert_eq!(
        care.reconcile().await.unwrap(),
        (0, 0),
        "a job present is left alone"
    );

    let w = worker::Worker::connect(&crate::workers::worker_config(
        &s,
        &register_worker(&s, &admin, "w").await,
        None,
    ))
    .await
    .unwrap();
    let (stop, run) = spawn_worker(w);
    wait_status(&s, &id, "completed", std::time::Duration::from_secs(30)).await;
    assert_eq!(count_events(&s, "TaskCompleted").await, 1);
    let _ = stop.send(true);
    let _ = run.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_stream_pushes_each_change_until_the_verdict() {
    let s = Stack::start().await;
    let admin = s.token(&s.seed().await).await;
    let id = upload_and_submit(&s, json!({})).await;
    let resp = s
        .http
        .get(s.url(&format!("/api/v1/client/tasks/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut resp = resp;

    let w = worker::Worker::connect(&crate::workers::worker_config(
        &s,
        &register_worker(&s, &admin, "w").await,
        None,
    ))
    .await
    .unwrap();
    let (stop, run) = spawn_worker(w);
    let mut text = String::new();
    let mut statuses = Vec::new();
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(chunk) = resp.chunk().await.unwrap() {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let frame: String = text.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                    assert!(frame.contains("event: status"), "{frame}");
                    let v: Value = serde_json::from_str(data.trim()).unwrap();
                    statuses.push(v["status"].as_str().unwrap().to_owned());
                }
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream did not end after the verdict: {statuses:?}"
    );
    assert_eq!(statuses.first().map(String::as_str), Some("queued"));
    assert_eq!(statuses.last().map(String::as_str), Some("completed"));
    let _ = stop.send(true);
    let _ = run.await;
}

/// Emails the fake provider received: (Idempotency-Key, body).
type Mailbox = std::sync::Arc<std::sync::Mutex<Vec<(Option<String>, Value)>>>;

/// Speaks Resend's API: `POST /emails` → `{"id"}`. The first call fails with a 500.
async fn fake_resend() -> (String, Mailbox) {
    let seen: Mailbox = Default::default();
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/emails",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let log = log.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let mut log = log.lock().unwrap();
                    log.push((key, body));
                    if log.len() == 1 {
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            axum::Json(json!({"message": "try again"})),
                        )
                    } else {
                        (
                            StatusCode::OK,
                            axum::Json(json!({"id": format!("em_{}", log.len())})),
                        )
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_wait_sends_the_verdict_by_email_once_despite_a_provider_error() {
    let s = Stack::start().await;
    let (resend, seen) = fake_resend().await;
    let mut cfg = crate::helpers::config_with_s3(&s.db.url, &s.nats, &s.s3);
    cfg.email.resend_api_key = Some("re_test".to_owned().into());
    cfg.email.resend_api_url = resend;
    cfg.email.email_notify_after_seconds = 0; // every wait counts as long here
    let api = crate::helpers::start_api(cfg).await;
    s.wait_ready(&api.base).await;
    let admin = s.token(&s.seed().await).await;

    let wav = worker::audio::tone_wav(1.0, 8000);
    let upload: Value = s
        .http
        .post(format!("{}/api/v1/client/uploads/presigned-url", api.base))
        .json(&json!({"contentType": "audio/wav", "contentLength": wav.len()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(put(&s, &upload, wav, "audio/wav").await.is_success());
    let submitted: Value = s
        .http
        .post(format!("{}/api/v1/client/tasks", api.base))
        .json(&json!({"uploadId": upload["uploadId"], "email": "ann@example.org"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(submitted["emailNotification"], true);
    let id = submitted["taskId"].as_str().unwrap().to_owned();
    let no_email = upload_and_submit(&s, json!({})).await;

    let w = worker::Worker::connect(&crate::workers::worker_config(
        &s,
        &register_worker(&s, &admin, "w").await,
        None,
    ))
    .await
    .unwrap();
    let (stop, run) = spawn_worker(w);
    wait_status(&s, &id, "completed", std::time::Duration::from_secs(30)).await;
    wait_status(
        &s,
        &no_email,
        "completed",
        std::time::Duration::from_secs(30),
    )
    .await;
    let sent = testkit::eventually(std::time::Duration::from_secs(20), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM email_notifications")
            .fetch_one(&s.db.pool)
            .await
            .ok()?;
        (n == 1).then_some(())
    })
    .await;
    assert!(sent.is_some(), "the verdict was never emailed");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.len(),
        2,
        "one failed attempt, one delivery, nothing more"
    );
    for (key, body) in &seen {
        assert_eq!(key.as_deref(), Some(format!("verdict-{id}").as_str()));
        assert_eq!(body["to"], json!(["ann@example.org"]));
        assert!(body["subject"].as_str().unwrap().contains("inconclusive"));
        assert!(
            body["text"].as_str().unwrap().contains(&id),
            "the email links to the result"
        );
    }
    let _ = stop.send(true);
    let _ = run.await;
    api.stop().await;
}

/// The worker binary, built by `cargo test --workspace` next to this test binary.
fn worker_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join("worker");
    assert!(
        bin.exists(),
        "{} is missing: run the workspace's tests (cargo test --workspace)",
        bin.display()
    );
    bin
}

fn worker_process(s: &Stack, token: &str, asr: &str) -> tokio::process::Child {
    tokio::process::Command::new(worker_binary())
        .env_clear()
        .env("NATS_URL", s.nats.url())
        .env("WORKER_TOKEN", token)
        .env("ASR_URL", asr)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_worker_process_mid_analysis_loses_nothing() {
    let s = Stack::start().await;
    let admin = s.token(&s.seed().await).await;
    tighten_workers_consumer(&s, std::time::Duration::from_secs(2), 5).await;
    let asr = hanging_then_answering_asr().await;
    let mut doomed = worker_process(&s, &register_worker(&s, &admin, "doomed").await, &asr);

    let id = upload_and_submit(&s, json!({})).await;
    wait_status(&s, &id, "processing", std::time::Duration::from_secs(20)).await;
    wait_until_hanging(&asr).await;
    testkit::kill9(doomed.id().unwrap());
    let _ = doomed.wait().await;

    let token = register_worker(&s, &admin, "survivor").await;
    let survivor_id = events::worker::token_worker_id(&token).unwrap();
    let mut survivor = worker_process(&s, &token, &asr);
    let done = wait_status(&s, &id, "completed", std::time::Duration::from_secs(30)).await;
    let verdict = done["result"]["verdict"].as_str().unwrap_or_default();
    assert!(matches!(verdict, "scam" | "suspicious"), "{done}");
    s.projected().await;
    let finished_by: uuid::Uuid =
        sqlx::query_scalar("SELECT worker_id FROM voice_tasks WHERE task_id = $1::uuid")
            .bind(&id)
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(finished_by, survivor_id);
    assert_eq!(
        count_events(&s, "TaskCompleted").await,
        1,
        "exactly one completion"
    );
    let _ = survivor.start_kill();
    let _ = survivor.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_workers_job_in_flight_goes_to_another_worker() {
    let s = Stack::start().await;
    let admin = s.token(&s.seed().await).await;
    tighten_workers_consumer(&s, std::time::Duration::from_secs(2), 5).await;
    let asr = hanging_then_answering_asr().await;
    let token = register_worker(&s, &admin, "revoked").await;
    let revoked_id = events::worker::token_worker_id(&token).unwrap();
    let mut revoked = worker_process(&s, &token, &asr);

    let id = upload_and_submit(&s, json!({})).await;
    wait_status(&s, &id, "processing", std::time::Duration::from_secs(20)).await;
    wait_until_hanging(&asr).await;
    let r = s
        .http
        .delete(s.url(&format!("/api/v1/admin/workers/{revoked_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);

    let token_b = register_worker(&s, &admin, "replacement").await;
    let mut replacement = worker_process(&s, &token_b, &asr);
    wait_status(&s, &id, "completed", std::time::Duration::from_secs(30)).await;
    s.projected().await;
    let finished_by: uuid::Uuid =
        sqlx::query_scalar("SELECT worker_id FROM voice_tasks WHERE task_id = $1::uuid")
            .bind(&id)
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(
        finished_by,
        events::worker::token_worker_id(&token_b).unwrap()
    );
    assert_eq!(count_events(&s, "TaskCompleted").await, 1);
    for child in [&mut revoked, &mut replacement] {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}

/// The 26-byte WebM of the hardening review (a DocType length of 2^48 bytes): before decoding
/// moved into a limited child process, it aborted the worker process on every delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_webm_fails_its_task_once_and_the_worker_process_stays_up() {
    let s = Stack::start().await;
    let admin = s.token(&s.seed().await).await;
    let asr = crate::workers::fake_asr("Hello, just calling about dinner on Sunday.").await;
    let mut proc_ = worker_process(&s, &register_worker(&s, &admin, "sturdy").await, &asr);
    let evil: Vec<u8> = vec![
        0x1a, 0x45, 0xdf, 0xa3, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x42, 0x82, 0x01,
        0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x77, 0x65, 0x62, 0x6d,
    ];
    let bad = upload_file_and_submit(&s, evil, "audio/webm", json!({})).await;
    let failed = wait_status(&s, &bad, "failed", std::time::Duration::from_secs(60)).await;
    assert_eq!(failed["attempts"], 1, "failed for good at once: {failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("decoder could not handle this file"),
        "{failed}"
    );
    assert!(
        proc_.try_wait().unwrap().is_none(),
        "the worker process is still running"
    );
    // And it goes on working.
    let good = upload_and_submit(&s, json!({})).await;
    wait_status(&s, &good, "completed", std::time::Duration::from_secs(60)).await;
    assert!(proc_.try_wait().unwrap().is_none());
    let failures: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'TaskFailed'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(failures, 1, "no redelivery loop");
    let _ = proc_.kill().await;
}

/// The hardening review: a second registered worker published a forged verdict for a task the
/// local worker had started (accepted), and could ack, term or extend another worker's job.
#[tokio::test]
async fn a_worker_can_neither_finish_nor_ack_a_job_another_worker_holds() {
    use async_nats::jetstream::consumer::PullConsumer;
    let s = Stack::start().await;
    let admin = s.token(&s.seed().await).await;
    let (holder, holder_client) =
        worker_client(&s, &register_worker(&s, &admin, "holder").await).await;
    let (thief, thief_client) =
        worker_client(&s, &register_worker(&s, &admin, "thief").await).await;
    let holder_js = async_nats::jetstream::new(holder_client.clone());

    let id = upload_and_submit(&s, json!({})).await;
    let task_id: uuid::Uuid = id.parse().unwrap();
    let consumer: PullConsumer = holder_js
        .get_consumer_from_stream("workers", "TASKS")
        .await
        .unwrap();
    // Waits for the dispatcher's job.
    let mut batch = consumer
        .batch()
        .max_messages(1)
        .expires(std::time::Duration::from_secs(20))
        .messages()
        .await
        .unwrap();
    let job = futures::StreamExt::next(&mut batch).await.unwrap().unwrap();
    let delivery = Some(job.info().unwrap().delivered as u64);
    publish_result(
        &holder_client,
        holder,
        &events::task::WorkerResult::Started {
            task_id,
            worker_id: holder,
            delivery,
        },
    )
    .await;
    wait_status(&s, &id, "processing", std::time::Duration::from_secs(20)).await;

    // The thief's verdict and failure are refused…
    let verdict = events::task::AnalysisResult {
        verdict: "safe".into(),
        ..Default::default()
    };
    publish_result(
        &thief_client,
        thief,
        &events::task::WorkerResult::Completed {
            task_id,
            worker_id: thief,
            delivery,
            result: Box::new(verdict.clone()),
        },
    )
    .await;
    publish_result(
        &thief_client,
        thief,
        &events::task::WorkerResult::Failed {
            task_id,
            worker_id: thief,
            delivery,
            reason: "forged".into(),
            retryable: false,
        },
    )
    .await;
    // …and so are its acks on the holder's job (they would end or extend it).
    let reply = job.reply.clone().unwrap();
    for ack in ["+TERM", "+ACK", "-NAK"] {
        let _ = thief_client.publish(reply.clone(), ack.into()).await;
    }
    thief_client.flush().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut info_consumer: PullConsumer = s
        .js("api")
        .await
        .get_consumer_from_stream("workers", "TASKS")
        .await
        .unwrap();
    let info = info_consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 1, "the holder's job is still its own");
    assert_eq!(info.num_redelivered, 0, "nobody else nak'ed it");
    let t = task(&s, &id).await;
    assert_eq!(t["status"], "processing", "{t}");
    assert_eq!(count_events(&s, "TaskCompleted").await, 0);
    assert_eq!(count_events(&s, "TaskFailed").await, 0);

    // The holder's own result and ack go through.
    publish_result(
        &holder_client,
        holder,
        &events::task::WorkerResult::Completed {
            task_id,
            worker_id: holder,
            delivery,
            result: Box::new(verdict),
        },
    )
    .await;
    job.double_ack().await.unwrap();
    wait_status(&s, &id, "completed", std::time::Duration::from_secs(20)).await;
    let info = info_consumer.info().await.unwrap();
    assert_eq!(info.num_ack_pending, 0, "the holder acked its job");
    s.projected().await;
    let finished_by: uuid::Uuid =
        sqlx::query_scalar("SELECT worker_id FROM voice_tasks WHERE task_id = $1::uuid")
            .bind(&id)
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(finished_by, holder);
}
