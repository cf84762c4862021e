//! Invariants 2 and 4: events apply at most once, in order; read models rebuild identically.

use async_nats::jetstream::consumer::{pull::Config as PullConfig, AckPolicy, DeliverPolicy};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{session_token, Stack};

/// Every read-model table as JSON, in a stable order.
pub async fn snapshot(pool: &sqlx::PgPool) -> Vec<Value> {
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

pub async fn activity(s: &Stack) {
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
    let admin = s.token(&password).await;
    // Reports, two auto-bans over a shared IP, one permanent, one vindicated.
    let users: Vec<(uuid::Uuid, String)> = (0..6)
        .map(|i| {
            let id = uuid::Uuid::new_v4();
            (id, session_token(id, &format!("user {i}")))
        })
        .collect();
    for (target, ips) in [
        (0, ["203.0.113.200", "203.0.113.201"]),
        (1, ["203.0.113.201", "203.0.113.202"]),
    ] {
        for ip in ips {
            let r = s
                .http
                .get(s.url("/api/v1/report/check-ban"))
                .bearer_auth(&users[target].1)
                .header("x-forwarded-for", ip)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
        }
        for (i, (_, token)) in users.iter().enumerate().skip(2) {
            let r = s
                .http
                .post(s.url("/api/v1/report/user"))
                .bearer_auth(token)
                .header("x-forwarded-for", format!("192.0.2.{i}"))
                .json(&serde_json::json!({"reportedUserId": users[target].0, "reason": "abuse"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::CREATED);
        }
    }
    for (i, number) in ["+14155550100", "+14155550100", "+442079460958"]
        .iter()
        .enumerate()
    {
        let r = s
            .http
            .post(s.url("/api/v1/client/phones/report"))
            .header("x-forwarded-for", format!("198.51.100.{}", i % 2))
            .json(&serde_json::json!({"phoneNumber": number, "category": "scam"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
    }
    s.projected().await;
    let id: uuid::Uuid =
        sqlx::query_scalar("SELECT report_id FROM phone_reports ORDER BY created_at LIMIT 1")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    let r = s
        .http
        .post(s.url(&format!("/api/v1/admin/phones/{id}/approve")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for name in ["edge-1", "edge-2"] {
        let r = s
            .http
            .post(s.url("/api/v1/admin/workers"))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let id = r.json::<serde_json::Value>().await.unwrap()["workerId"]
            .as_str()
            .unwrap()
            .to_owned();
        if name == "edge-2" {
            let r = s
                .http
                .delete(s.url(&format!("/api/v1/admin/workers/{id}")))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::NO_CONTENT);
        }
    }
    // A host platform with a webhook (platforms; its attempts fill webhook_attempts below).
    let r = s
        .http
        .post(s.url("/api/v1/admin/platforms"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "chat.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let platform: Value = r.json().await.unwrap();
    let (hook, received) = crate::platforms::receiver().await;
    let r = s
        .http
        .put(s.url("/api/v1/platform/webhook"))
        .bearer_auth(platform["apiKey"].as_str().unwrap())
        .json(&serde_json::json!({ "url": hook }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A recording waiting for analysis (voice_tasks).
    crate::tasks::upload_and_submit(s, serde_json::json!({"callerNumber": "+14155550100"})).await;
    // A completed one (its result published as a registered worker would) being re-analysed
    // (reanalysis_batches).
    let token = crate::tasks::register_worker(s, &admin, "projection").await;
    let done = crate::tasks::upload_and_submit(s, serde_json::json!({})).await;
    let (wid, client) = crate::tasks::worker_client(s, &token).await;
    let started = events::task::WorkerResult::Started {
        task_id: done.parse().unwrap(),
        worker_id: wid,
        delivery: Some(1),
    };
    let completed = events::task::WorkerResult::Completed {
        task_id: done.parse().unwrap(),
        worker_id: wid,
        delivery: Some(1),
        result: Box::new(events::task::AnalysisResult {
            verdict: "safe".into(),
            ..Default::default()
        }),
    };
    for result in [started, completed] {
        crate::tasks::publish_result(&client, wid, &result).await;
    }
    crate::tasks::wait_status(s, &done, "completed", std::time::Duration::from_secs(20)).await;
    let r = s
        .http
        .post(s.url("/api/v1/admin/tasks/reanalyse"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(r.json::<Value>().await.unwrap()["requested"], 1);
    for (target, decision) in [(0, "permanent"), (1, "vindicated")] {
        let r = s
            .http
            .post(s.url(&format!("/api/v1/report/review/{}", users[target].0)))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"decision": decision}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    // The permanently banned user appeals (ban_appeals) and the approved number is disputed
    // (phone_disputes); both are decided.
    let r = s
        .http
        .post(s.url("/api/v1/report/appeal"))
        .bearer_auth(&users[0].1)
        .header("x-forwarded-for", "203.0.113.200")
        .json(&serde_json::json!({"text": "not me"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let appeal = r.json::<Value>().await.unwrap()["appealId"].clone();
    let r = s
        .http
        .post(s.url("/api/v1/client/phones/+14155550100/dispute"))
        .json(&serde_json::json!({"text": "my shop", "contactEmail": "shop@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let dispute = r.json::<Value>().await.unwrap()["disputeId"].clone();
    s.projected().await;
    for path in [
        format!(
            "/api/v1/admin/appeals/{}/decision",
            appeal.as_str().unwrap()
        ),
        format!(
            "/api/v1/admin/phone-disputes/{}/decision",
            dispute.as_str().unwrap()
        ),
    ] {
        let r = s
            .http
            .post(s.url(&path))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"decision": "uphold", "note": "checked"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    // Every decision after the webhook was set: two reviews, the IP bans the vindication
    // lifted, the appeal's outcome; the first attempt fails once and is retried.
    let delivered = testkit::eventually(std::time::Duration::from_secs(20), || async {
        (received.lock().unwrap().len() >= 5).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "the webhook saw the decisions");
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
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(applied as i64, stored, "every stored event was replayed");
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
    let mut batch = consumer
        .fetch()
        .max_messages(1000)
        .messages()
        .await
        .unwrap();
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
    let n = again.skipped;
    assert!(n > 30, "the whole history came again ({n})");
    assert_eq!(again.applied, 0);
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
    assert_eq!((out.applied, out.checkpoint), (n, n as u64));
    assert_eq!(snapshot(&s.db.pool).await, before);
}
