//! Slow and oversized clients (issue 10, item 5): trickled headers and bodies are cut off, and
//! the upload relay checks an upload before reading its body, then streams it.

use std::time::{Duration, Instant};

use api::commands::{execute, CommandContext};
use api::domain::voice_task::{VoiceTask, VoiceTaskCommand};
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{config_with_s3, start_api, Stack};

fn addr(base: &str) -> String {
    base.trim_start_matches("http://").to_owned()
}

/// Sends `head`, then one byte of `drip` every 300 ms; returns what the server answered and
/// whether it closed the connection before the drip ran out (15 s).
async fn trickle(base: &str, head: &str, drip: &[u8]) -> (String, bool) {
    let mut conn = tokio::net::TcpStream::connect(addr(base)).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let reader = tokio::spawn(async move {
        let mut answer = Vec::new();
        let _ = rd.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    });
    let started = Instant::now();
    let mut closed_early = false;
    for b in drip.iter().cycle() {
        if started.elapsed() > Duration::from_secs(15) {
            break;
        }
        if reader.is_finished() || wr.write_all(&[*b]).await.is_err() {
            closed_early = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(wr);
    let answer = tokio::time::timeout(Duration::from_secs(5), reader)
        .await
        .map(|r| r.unwrap())
        .unwrap_or_default();
    (answer, closed_early)
}

/// The review: trickled headers held a connection 40 s, a trickled body 45 s.
#[tokio::test]
async fn trickled_headers_and_bodies_cannot_hold_a_connection() {
    let s = Stack::start().await;
    // Headers that never end (the test config allows 4 s).
    let (_, closed) = trickle(
        &s.api.base,
        "GET /healthz HTTP/1.1\r\nHost: x\r\n",
        b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
    )
    .await;
    assert!(closed, "trickled headers kept the connection open");
    // A body that never ends (the test config allows 5 s per request): 408.
    let (answer, closed) = trickle(
        &s.api.base,
        "POST /api/v1/client/phones/report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"phoneNumber\": \"",
        b"1",
    )
    .await;
    assert!(closed, "a trickled body kept the connection open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // The server is fine afterwards.
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// The review: the relay read a whole 25 MB body before finding the upload id unknown, had no
/// rate limit, and accepted a PUT after `expiresAt`.
#[tokio::test]
async fn the_upload_relay_checks_before_reading_and_enforces_expiry() {
    let s = Stack::start().await;
    let mut cfg = config_with_s3(&s.db.url, &s.nats, &s.s3);
    cfg.uploads_via_api = true;
    cfg.rate_limit_public_reads_per_minute = 300;
    let site = start_api(cfg).await;
    s.wait_ready(&site.base).await;

    // An unknown id with a 25 MB body announced: answered at once, without the body.
    let unknown = uuid::Uuid::new_v4();
    let mut conn = tokio::net::TcpStream::connect(addr(&site.base))
        .await
        .unwrap();
    conn.write_all(
        format!(
            "PUT /api/v1/client/uploads/{unknown}/content HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 26214400\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 12];
    tokio::time::timeout(Duration::from_secs(3), conn.read_exact(&mut head))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    assert_eq!(&head, b"HTTP/1.1 404");

    // An expired upload link is refused.
    let expired = uuid::Uuid::new_v4();
    let tasks = postgres_es::postgres_cqrs::<VoiceTask>(s.db.pool.clone(), vec![], ());
    execute(
        &tasks,
        &expired.to_string(),
        VoiceTaskCommand::AuthorizeUpload {
            object_key: format!("uploads/{expired}"),
            content_type: "audio/wav".into(),
            content_length: 4,
            expires_at: Utc::now() - chrono::Duration::seconds(26),
        },
        &CommandContext::new("test", None),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let put = |id: String, body: Vec<u8>| {
        http.put(format!("{}/api/v1/client/uploads/{id}/content", site.base))
            .header("content-type", "audio/wav")
            .body(body)
            .send()
    };
    let r = put(expired.to_string(), b"RIFF".to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "upload_expired");

    // A real upload: the wrong length is refused, the right one streams to the store.
    let wav = worker::audio::tone_wav(1.0, 8000);
    let upload: Value = http
        .post(format!("{}/api/v1/client/uploads/presigned-url", site.base))
        .json(&json!({"contentType": "audio/wav", "contentLength": wav.len()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = upload["uploadId"].as_str().unwrap().to_owned();
    let r = put(id.clone(), wav[..wav.len() - 1].to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = put(id.clone(), wav.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let stored = std::fs::read(s.s3.object_path(&format!("uploads/{id}"))).unwrap();
    assert_eq!(stored, wav, "stored byte for byte");

    // And it is rate-limited like every public write.
    let mut limited = false;
    for _ in 0..60 {
        if put(unknown.to_string(), vec![0; 4]).await.unwrap().status()
            == StatusCode::TOO_MANY_REQUESTS
        {
            limited = true;
            break;
        }
    }
    assert!(limited, "the relay has no rate limit");
    // An ordinary check (URL, upload, submission) fits the default write limit (20 a minute, 2 at
    // once): the relayed upload is not a second write.
}

/// At most `HTTP_MAX_CONNECTIONS` connections are served at once: further clients wait until
/// one closes (here: when the idle ones hit the header timeout), instead of each costing a task.
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let s = Stack::start().await;
    let mut cfg = config_with_s3(&s.db.url, &s.nats, &s.s3);
    cfg.http_max_connections = 2;
    let capped = start_api(cfg).await;
    s.wait_ready(&capped.base).await;
    tokio::time::sleep(Duration::from_millis(4500)).await; // the readiness probe's connection idles out
    let idle: Vec<_> = futures::future::join_all(
        (0..2).map(|_| tokio::net::TcpStream::connect(addr(&capped.base))),
    )
    .await;
    let http = reqwest::Client::new();
    let third = http.get(format!("{}/healthz", capped.base)).send();
    tokio::pin!(third);
    assert!(
        tokio::time::timeout(Duration::from_secs(1), &mut third)
            .await
            .is_err(),
        "a third connection was served while two were open"
    );
    // The idle two are closed by the header timeout (4 s); then the third is served.
    let r = tokio::time::timeout(Duration::from_secs(15), third)
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    drop(idle);
}
