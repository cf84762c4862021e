//! Workers anywhere: a token is all they need; they see only their own subjects; they analyse
//! jobs; revoking one cuts it off within seconds.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull::Config as PullConfig;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::Stack;
use events::task::{Job, WorkerResult};

async fn admin(s: &Stack) -> String {
    let password = s.seed().await;
    s.token(&password).await
}

async fn register(s: &Stack, token: &str, name: &str) -> (Uuid, String) {
    let r = s
        .http
        .post(s.url("/api/v1/admin/workers"))
        .bearer_auth(token)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let b: Value = r.json().await.unwrap();
    (
        b["workerId"].as_str().unwrap().parse().unwrap(),
        b["workerToken"].as_str().unwrap().to_owned(),
    )
}

async fn connect(s: &Stack, token: &str) -> Result<async_nats::Client, async_nats::ConnectError> {
    let prefix = events::worker::token_worker_id(token)
        .map(events::worker::inbox_prefix)
        .unwrap_or_default();
    async_nats::ConnectOptions::with_token(token.to_owned())
        .custom_inbox_prefix(prefix)
        .connection_timeout(Duration::from_secs(3))
        .connect(s.nats.url())
        .await
}

pub fn worker_config(s: &Stack, token: &str, asr: Option<String>) -> worker::Config {
    worker::Config {
        nats_url: s.nats.url(),
        worker_token: token.to_owned().into(),
        http_addr: None,
        concurrency: 2,
        analysis: worker::AnalysisConfig {
            asr_engine: if asr.is_some() { "openai" } else { "none" }.into(),
            asr_url: asr,
            max_audio_bytes: 5 * 1024 * 1024,
            ..Default::default()
        },
        log_format: "text".into(),
    }
}

async fn workers(s: &Stack, token: &str) -> Vec<Value> {
    let r = s
        .http
        .get(s.url("/api/v1/admin/workers"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_worker_connects_with_its_token_and_reaches_only_its_own_subjects() {
    let s = Stack::start().await;
    let admin = admin(&s).await;
    let (id, token) = register(&s, &admin, "edge-1").await;
    let (other, _) = register(&s, &admin, "edge-2").await;
    let r = s
        .http
        .post(s.url("/api/v1/admin/workers"))
        .bearer_auth(&admin)
        .json(&json!({"name": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    assert!(
        connect(&s, "blw_not_a_real_token").await.is_err(),
        "a forged token is refused"
    );
    assert!(
        connect(&s, &format!("blw_{}_wrongsecret", id.simple()))
            .await
            .is_err(),
        "the wrong secret is refused"
    );
    let client = connect(&s, &token).await.expect("the token connects");
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(client.clone());

    // Its own result subject and the job consumer work…
    assert!(js
        .publish(events::task::results_subject(id), "{}".into())
        .await
        .unwrap()
        .await
        .is_ok());
    assert!(js
        .get_consumer_from_stream::<PullConfig, _, _>("workers", "TASKS")
        .await
        .is_ok());
    // …the history, other workers' results and stream administration do not.
    let denied = |r: Result<async_nats::jetstream::context::PublishAckFuture, _>| async move {
        match r {
            Ok(ack) => ack.await.is_err(),
            Err(_) => true,
        }
    };
    assert!(
        denied(
            js.publish("ev.admin.mallory.AdminCreated", "{}".into())
                .await
        )
        .await,
        "published into EVENTS"
    );
    assert!(
        denied(
            js.publish(events::task::results_subject(other), "{}".into())
                .await
        )
        .await,
        "spoofed another worker"
    );
    assert!(
        js.get_stream("EVENTS").await.is_err(),
        "read the EVENTS stream"
    );
    let mut spy = client.subscribe("ev.>").await.unwrap();
    let _ = client.flush().await;
    register(&s, &admin, "edge-3").await; // an event on ev.worker.… is published meanwhile
    s.projected().await;
    let seen = tokio::time::timeout(Duration::from_secs(1), spy.next()).await;
    assert!(
        !matches!(seen, Ok(Some(_))),
        "the worker read the event history"
    );

    // Heartbeats make it show online.
    let w = worker::Worker::connect(&worker_config(&s, &token, None))
        .await
        .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(w.run(common::shutdown::stopped(rx)));
    let online = testkit::eventually(Duration::from_secs(10), || async {
        let list = workers(&s, &admin).await;
        list.iter()
            .find(|w| w["workerId"] == id.to_string() && w["status"] == "online")
            .cloned()
    })
    .await;
    let online = online.expect("the worker never showed online");
    assert_eq!(online["name"], "edge-1");
    assert!(online["lastSeenAt"].is_string());
    let _ = stop.send(true);
    let _ = running.await;
}

/// Serves `/tone.wav` (2 s of audio), `/garbage.wav` and `/missing.wav` (404).
async fn audio_server() -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/tone.wav",
            get(|| async { worker::audio::tone_wav(2.0, 8000) }),
        )
        .route(
            "/garbage.wav",
            get(|| async { b"definitely not audio".to_vec() }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

/// Speaks the OpenAI transcription protocol: `POST /v1/audio/transcriptions` → `{"text": …}`.
pub async fn fake_asr(text: &'static str) -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/v1/audio/transcriptions",
        post(move |body: axum::body::Bytes| async move {
            assert!(body.len() > 1000, "the audio was uploaded");
            axum::Json(json!({"text": text}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

async fn publish_job(js: &async_nats::jetstream::Context, job: &Job) {
    js.publish(
        events::topology::TASK_SUBJECT,
        serde_json::to_vec(job).unwrap().into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// Collects `n` final results (not `Started`) from a subscription to a worker's result subject
/// (the api's intake consumes the RESULTS work queue; a core subscription sees the same messages).
async fn next_results(sub: &mut async_nats::Subscriber, n: usize) -> Vec<WorkerResult> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(30), sub.next())
            .await
            .expect("a result in time")
            .unwrap();
        let r: WorkerResult = serde_json::from_slice(&m.payload).unwrap();
        if !matches!(r, WorkerResult::Started { .. }) {
            out.push(r);
        }
    }
    out
}

#[tokio::test]
async fn a_worker_analyses_jobs_and_refuses_bad_audio_without_retrying() {
    let s = Stack::start().await;
    let admin = admin(&s).await;
    // A number moderators found dangerous: the worker reads its standing from the bucket.
    let r = s
        .http
        .post(s.url("/api/v1/client/phones/report"))
        .json(&json!({"phoneNumber": "+14155550100", "category": "scam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    s.projected().await;
    let list: Value = s
        .http
        .get(s.url("/api/v1/admin/phones"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = list["items"][0]["id"].as_str().unwrap();
    assert_eq!(
        s.http
            .post(s.url(&format!("/api/v1/admin/phones/{id}/approve")))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    s.projected().await;

    let (wid, token) = register(&s, &admin, "analyst").await;
    let audio = audio_server().await;
    let asr = fake_asr("Hello, this is the IRS. You will be arrested today unless you pay with Google Play gift cards. Don't tell anyone.").await;
    let w = worker::Worker::connect(&worker_config(&s, &token, Some(asr)))
        .await
        .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(w.run(common::shutdown::stopped(rx)));

    let js = s.js("api").await;
    let api_client = s.nats.client("api").await.unwrap();
    let mut results_sub = api_client
        .subscribe(events::task::results_subject(wid))
        .await
        .unwrap();
    api_client.flush().await.unwrap();
    let good = Job {
        task_id: Uuid::new_v4(),
        audio_url: format!("{audio}/tone.wav"),
        content_type: Some("audio/wav".into()),
        caller_number: Some("+14155550100".into()),
        language: Some("en".into()),
    };
    let bad = Job {
        task_id: Uuid::new_v4(),
        audio_url: format!("{audio}/garbage.wav"),
        content_type: Some("audio/wav".into()),
        caller_number: None,
        language: None,
    };
    publish_job(&js, &good).await;
    publish_job(&js, &bad).await;
    js.publish(events::topology::TASK_SUBJECT, "{not a job".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let results = next_results(&mut results_sub, 2).await;
    let completed = results.iter().find_map(|r| match r {
        WorkerResult::Completed {
            task_id,
            worker_id,
            result,
            ..
        } if *task_id == good.task_id => Some((worker_id, result)),
        _ => None,
    });
    let (worker_id, result) = completed.expect("the good job completed");
    assert_eq!(*worker_id, wid);
    assert_eq!(result.verdict, "scam");
    assert!(result.risk_score > 0.9);
    assert!((result.audio.duration_seconds - 2.0).abs() < 0.01);
    let kinds: Vec<&str> = result.indicators.iter().map(|i| i.kind.as_str()).collect();
    for k in [
        "authority_impersonation",
        "unusual_payment",
        "urgency_threat",
        "secrecy_isolation",
        "caller_number_reported",
    ] {
        assert!(kinds.contains(&k), "missing {k} in {kinds:?}");
    }
    assert!(result
        .indicators
        .iter()
        .any(|i| i.evidence.contains("Google Play")));
    assert_eq!(
        result.caller_number.as_ref().map(|c| c.status.as_str()),
        Some("dangerous")
    );
    assert!(
        result.analyzer.version.contains("rules:"),
        "{:?}",
        result.analyzer
    );
    let failed = results.iter().find_map(|r| match r {
        WorkerResult::Failed {
            task_id,
            reason,
            retryable,
            ..
        } if *task_id == bad.task_id => Some((reason.clone(), *retryable)),
        _ => None,
    });
    let (reason, retryable) = failed.expect("the undecodable job failed");
    assert!(!retryable);
    assert!(reason.contains("not audio"), "{reason}");

    // Nothing is left pending: the malformed job was terminated, not retried forever.
    let settled = testkit::eventually(Duration::from_secs(10), || async {
        let mut c = js
            .get_consumer_from_stream::<PullConfig, _, _>("workers", "TASKS")
            .await
            .ok()?;
        let info = c.info().await.ok()?;
        (info.num_ack_pending == 0 && info.num_pending == 0).then_some(())
    })
    .await;
    assert!(settled.is_some(), "jobs left pending");
    let _ = stop.send(true);
    let _ = running.await;
}

#[tokio::test]
async fn revoking_a_worker_cuts_it_off_within_five_seconds_for_good() {
    let s = Stack::start().await;
    let admin = admin(&s).await;
    let (id, token) = register(&s, &admin, "doomed").await;
    let client = connect(&s, &token).await.unwrap();
    assert_eq!(
        client.connection_state(),
        async_nats::connection::State::Connected
    );

    let started = Instant::now();
    let r = s
        .http
        .delete(s.url(&format!("/api/v1/admin/workers/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let gone = testkit::eventually(Duration::from_secs(5), || async {
        (client.connection_state() != async_nats::connection::State::Connected).then_some(())
    })
    .await;
    assert!(gone.is_some(), "still connected 5 s after the revocation");
    eprintln!("revoked worker disconnected after {:?}", started.elapsed());
    assert!(
        connect(&s, &token).await.is_err(),
        "a revoked token connects again"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_ne!(
        client.connection_state(),
        async_nats::connection::State::Connected,
        "it reconnected"
    );

    let again = s
        .http
        .delete(s.url(&format!("/api/v1/admin/workers/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::NO_CONTENT,
        "revoking twice is harmless"
    );
    let unknown = s
        .http
        .delete(s.url(&format!("/api/v1/admin/workers/{}", Uuid::new_v4())))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    s.projected().await;
    let list = workers(&s, &admin).await;
    assert_eq!(
        list.iter()
            .find(|w| w["workerId"] == id.to_string())
            .unwrap()["status"],
        "revoked"
    );
}
