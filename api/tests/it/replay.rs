//! Analysts: the history as NDJSON through read-only credentials.

use serde_json::Value;

use crate::helpers::Stack;
use projector::replay::{replay, ReplayFilter};

async fn lines(js: &async_nats::jetstream::Context, filter: ReplayFilter) -> Vec<Value> {
    let mut out = Vec::new();
    let n = replay(js, &filter, &mut out).await.unwrap();
    let lines: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len() as u64, n);
    lines
}

#[tokio::test]
async fn replay_filters_the_history_with_read_only_credentials() {
    let s = Stack::start().await;
    let password = s.seed().await;
    let t0 = chrono::Utc::now();
    s.token(&password).await;
    s.token(&password).await;
    s.projected().await;

    let js = s.js("replay").await;
    let all = lines(&js, ReplayFilter::default()).await;
    assert_eq!(all.len(), 3);
    for key in [
        "streamSeq",
        "subject",
        "eventType",
        "aggregateType",
        "aggregateId",
        "occurredAt",
        "payload",
    ] {
        assert!(all[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(all[0]["eventType"], "AdminCreated");
    assert_eq!(all[0]["subject"], "ev.admin.admin.AdminCreated");

    let logins = lines(
        &js,
        ReplayFilter {
            types: vec!["AdminLoggedIn".into()],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(logins.len(), 2);
    let by_agg = lines(
        &js,
        ReplayFilter {
            aggregate: Some("admin:admin".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_agg.len(), 1);
    let sessions = lines(
        &js,
        ReplayFilter {
            aggregate: Some("admin_session".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(sessions.len(), 2);
    let none = lines(
        &js,
        ReplayFilter {
            aggregate: Some("admin:someone-else".into()),
            ..Default::default()
        },
    )
    .await;
    assert!(none.is_empty());
    let since = lines(
        &js,
        ReplayFilter {
            since: Some(t0),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(since.len(), 2);
    let until = lines(
        &js,
        ReplayFilter {
            until: Some(t0),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(until.len(), 1);
}

#[tokio::test]
async fn the_replay_user_can_neither_write_nor_delete() {
    let s = Stack::start().await;
    s.seed().await;
    s.projected().await;
    // Refused requests get no answer; a short timeout keeps the test quick.
    let js = async_nats::jetstream::ContextBuilder::new()
        .timeout(std::time::Duration::from_secs(2))
        .build(s.nats.client("replay").await.unwrap());

    let publish = js
        .publish("ev.admin.mallory.AdminCreated", "{}".into())
        .await;
    let acked = match publish {
        Ok(ack) => ack.await.is_ok(),
        Err(_) => false,
    };
    assert!(!acked, "the replay user published into EVENTS");
    assert!(js.delete_stream("EVENTS").await.is_err());
    assert!(js
        .create_key_value(async_nats::jetstream::kv::Config {
            bucket: "x".into(),
            ..Default::default()
        })
        .await
        .is_err());

    // Nor can it read the replies other clients get (its inbox is private).
    let spy_client = s.nats.client("replay").await.unwrap();
    let spy = spy_client.subscribe("_INBOX.>").await;
    let mut spy = spy.unwrap();
    let _ = spy_client.flush().await;
    let api_js = s.js("api").await;
    let _ = api_js.get_stream("EVENTS").await.unwrap();
    let seen = tokio::time::timeout(
        std::time::Duration::from_secs(1),
        futures::StreamExt::next(&mut spy),
    )
    .await;
    assert!(
        !matches!(seen, Ok(Some(_))),
        "the replay user read another client's replies"
    );
    let mut stream = api_js.get_stream("EVENTS").await.unwrap();
    assert_eq!(
        stream.info().await.unwrap().state.messages,
        1,
        "nothing was written"
    );
}
