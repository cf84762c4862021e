//! Invariant 6: Postgres is the source of truth — a lost EVENTS stream is re-populated from it,
//! with the same ids, in per-aggregate order, and the read models rebuild to the same content.

use reqwest::StatusCode;

use crate::helpers::{stream_contents, Stack};

#[tokio::test]
async fn a_lost_stream_is_republished_from_postgres() {
    let mut s = Stack::start().await;
    let password = s.seed().await;
    for _ in 0..3 {
        s.token(&password).await;
    }
    let r = s
        .http
        .post(s.url("/api/v1/client/phones/report"))
        .json(&serde_json::json!({"phoneNumber": "+14155550100", "category": "spam"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    s.projected().await;
    let js = s.js("api").await;
    let before: Vec<(String, String)> = stream_contents(&js)
        .await
        .into_iter()
        .map(|(_, id, e)| (id, e.event_id.to_string()))
        .collect();
    let accounts: i64 = sqlx::query_scalar("SELECT login_count FROM admin_accounts")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();

    // Refused while the stream still has messages.
    let refused = janitor::republish(&s.db.pool, &js, false).await;
    assert!(
        matches!(refused, Err(janitor::RepublishError::StreamNotEmpty(n)) if n as usize == before.len())
    );

    s.stop_projector().await;
    js.delete_stream("EVENTS").await.unwrap();
    events::topology::ensure(&js, 1).await.unwrap();
    let queued = janitor::republish(&s.db.pool, &js, false).await.unwrap();
    assert_eq!(queued as usize, before.len());
    let drained = testkit::eventually(std::time::Duration::from_secs(20), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&s.db.pool)
            .await
            .ok()?;
        (n == 0).then_some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "the relay did not publish the re-queued events"
    );

    let after: Vec<(String, String)> = stream_contents(&js)
        .await
        .into_iter()
        .map(|(_, id, e)| (id, e.event_id.to_string()))
        .collect();
    let mut sorted_before = before.clone();
    let mut sorted_after = after.clone();
    sorted_before.sort();
    sorted_after.sort();
    assert_eq!(
        sorted_after, sorted_before,
        "the same events with the same ids, once each"
    );

    projector::rebuild::rebuild(&s.db.pool, &js).await.unwrap();
    let again: i64 = sqlx::query_scalar("SELECT login_count FROM admin_accounts")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(again, accounts);
    let status: String = sqlx::query_scalar("SELECT status FROM phone_numbers")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "reported");
}
