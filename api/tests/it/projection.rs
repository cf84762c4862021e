//! Invariants 2 and 4: events apply at most once, in order; read models rebuild identically.

use async_nats::jetstream::consumer::{pull::Config as PullConfig, AckPolicy, DeliverPolicy};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::Stack;

/// Every read-model table as JSON, in a stable order.
async fn snapshot(pool: &sqlx::PgPool) -> Vec<Value> {
    let mut out = Vec::new();
    for table in projector::apply::READ_MODEL_TABLES {
        let rows: Option<Value> = sqlx::query_scalar(&format!(
            "SELECT json_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text) FROM {table} t"
        ))
        .fetch_one(pool)
        .await
        .unwrap();
        out.push(rows.unwrap_or(Value::Null));
    }
    out
}

async fn activity(s: &Stack) {
    let password = s.seed().await;
    for _ in 0..3 {
        let token = s.token(&password).await;
        let r = s
            .http
            .post(s.url("/api/v1/admin/logout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    s.token(&password).await;
    s.projected().await;
}

#[tokio::test]
async fn dropping_and_rebuilding_read_models_gives_identical_content() {
    let mut s = Stack::start().await;
    activity(&s).await;
    let before = snapshot(&s.db.pool).await;
    assert!(
        before.iter().all(|t| !t.is_null()),
        "the activity filled every table"
    );

    s.stop_projector().await;
    for table in projector::apply::READ_MODEL_TABLES {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&s.db.pool)
            .await
            .unwrap();
    }
    let js = s.js("projector").await;
    let applied = projector::rebuild::rebuild(&s.db.pool, &js).await.unwrap();
    assert_eq!(applied, 8, "seed + 4 logins + 3 logouts");
    assert_eq!(snapshot(&s.db.pool).await, before);

    // The live projector resumes after the rebuild without applying anything twice.
    s.start_projector().await;
    let password_less = s
        .http
        .post(s.url("/api/v1/admin/seed"))
        .send()
        .await
        .unwrap();
    assert_eq!(password_less.status(), StatusCode::CONFLICT);
    s.projected().await;
    assert_eq!(snapshot(&s.db.pool).await, before);
}

async fn fetch_all(
    js: &async_nats::jetstream::Context,
    name: &str,
    deliver: DeliverPolicy,
) -> Vec<async_nats::jetstream::Message> {
    let stream = js.get_stream("EVENTS").await.unwrap();
    let consumer = stream
        .create_consumer(PullConfig {
            durable_name: Some(name.into()),
            ack_policy: AckPolicy::Explicit,
            deliver_policy: deliver,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = consumer.fetch().max_messages(100).messages().await.unwrap();
    let mut out = Vec::new();
    while let Some(m) = batch.next().await {
        out.push(m.unwrap());
    }
    out
}

#[tokio::test]
async fn redelivered_events_are_applied_once_and_gaps_are_filled_in_order() {
    let mut s = Stack::start().await;
    activity(&s).await;
    let before = snapshot(&s.db.pool).await;
    s.stop_projector().await;
    let js = s.js("projector").await;
    let p = projector::Projector::new(s.db.pool.clone(), js.clone());

    // Everything again (as after a crash before the ack): all skipped, nothing changes.
    let again = p
        .process_batch(fetch_all(&js, "again", DeliverPolicy::All).await)
        .await
        .unwrap();
    assert_eq!((again.applied, again.skipped), (0, 8));
    assert_eq!(snapshot(&s.db.pool).await, before);

    // From scratch, but only the last message arrives: the seven before it are fetched and
    // applied first, so the result is the same as in-order delivery.
    for table in projector::apply::READ_MODEL_TABLES {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&s.db.pool)
            .await
            .unwrap();
    }
    sqlx::query("DELETE FROM projector_checkpoints")
        .execute(&s.db.pool)
        .await
        .unwrap();
    let last_only = fetch_all(&js, "last", DeliverPolicy::Last).await;
    assert_eq!(last_only.len(), 1);
    let out = p.process_batch(last_only).await.unwrap();
    assert_eq!((out.applied, out.checkpoint), (8, 8));
    assert_eq!(snapshot(&s.db.pool).await, before);
}
