//! Data over time: `make backup` / `make restore` (the database is the backup; a fresh stack
//! restored from it republishes the same history and rebuilds the same read models), and
//! retention (with a moved clock).

use std::process::Command;

use crate::helpers::{config_with_s3, start_api, Stack};

fn script(name: &str) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg(testkit::repo_root().join("scripts").join(name));
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_into_a_fresh_stack_rebuilds_the_same_read_models() {
    let s = Stack::start().await;
    crate::projection::activity(&s).await;
    // Quiet first: webhook retries still record attempts for a moment after the activity.
    let mut before = crate::projection::snapshot(&s.db.pool).await;
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        s.projected().await;
        let now = crate::projection::snapshot(&s.db.pool).await;
        if now == before {
            break;
        }
        before = now;
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();

    let dir = testkit::TempDir::new("bl-backup");
    let out = script("backup.sh")
        .arg(&dir.0)
        .env("DATABASE_URL", &s.db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.0.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["events"], events);

    // A restore never overwrites a history by accident.
    let out = script("restore.sh")
        .arg(&dir.0)
        .env("DATABASE_URL", &s.db.url)
        .env("DB_ONLY", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already holds"));

    // A fresh database, restored, then a fresh NATS: the history is republished and rebuilt.
    let db = testkit::Db::fresh().await.unwrap();
    let out = script("restore.sh")
        .arg(&dir.0)
        .env("DATABASE_URL", &db.url)
        .env("DB_ONLY", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nats = testkit::Nats::start().await.unwrap();
    let s3 = testkit::S3::start().await.unwrap();
    let api = start_api(config_with_s3(&db.url, &nats, &s3)).await;
    s.wait_ready(&api.base).await;
    let js = async_nats::jetstream::new(nats.client("janitor").await.unwrap());
    let queued = janitor::republish(&db.pool, &js, false).await.unwrap();
    assert_eq!(queued as i64, events);
    let drained = testkit::eventually(std::time::Duration::from_secs(30), || async {
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&db.pool)
            .await
            .ok()?;
        (left == 0).then_some(())
    })
    .await;
    assert!(drained.is_some(), "the relay did not publish the history");
    let projector_js = async_nats::jetstream::new(nats.client("projector").await.unwrap());
    let applied = projector::rebuild::rebuild(&db.pool, &projector_js)
        .await
        .unwrap();
    assert_eq!(applied as i64, events);
    assert_eq!(crate::projection::snapshot(&db.pool).await, before);
    api.stop().await;
}

/// Retention moves the clock instead of waiting: a recording lives RECORDING_RETENTION_DAYS
/// after its task ended, then it is deleted from storage; the verdict stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_deleted_after_its_retention_and_the_verdict_stays() {
    use chrono::{Duration, Utc};
    let s = Stack::start().await;
    let admin = s.token(&s.seed().await).await;
    let token = crate::tasks::register_worker(&s, &admin, "retention").await;
    let id = crate::tasks::upload_and_submit(&s, serde_json::json!({})).await;
    let (wid, client) = crate::tasks::worker_client(&s, &token).await;
    let task_id = id.parse().unwrap();
    for result in [
        events::task::WorkerResult::Started {
            task_id,
            worker_id: wid,
            delivery: Some(1),
        },
        events::task::WorkerResult::Completed {
            task_id,
            worker_id: wid,
            delivery: Some(1),
            result: Box::new(events::task::AnalysisResult {
                verdict: "safe".into(),
                ..Default::default()
            }),
        },
    ] {
        crate::tasks::publish_result(&client, wid, &result).await;
    }
    crate::tasks::wait_status(&s, &id, "completed", std::time::Duration::from_secs(20)).await;

    let storage = pipeline::storage::Storage::new(&config_with_s3(&s.db.url, &s.nats, &s.s3).s3);
    let key = format!("uploads/{id}");
    let retention = janitor::retention::Retention::new(
        s.db.pool.clone(),
        pipeline::storage::Storage::new(&config_with_s3(&s.db.url, &s.nats, &s.s3).s3),
        janitor::retention::RetentionConfig { recording_days: 30 },
    );
    // 29 days on: kept.
    assert_eq!(
        retention
            .recordings(Utc::now() + Duration::days(29))
            .await
            .unwrap(),
        0
    );
    assert!(storage.head(&key).await.unwrap().is_some());
    // 31 days on: deleted, once.
    assert_eq!(
        retention
            .recordings(Utc::now() + Duration::days(31))
            .await
            .unwrap(),
        1
    );
    assert!(storage.head(&key).await.unwrap().is_none());
    s.projected().await;
    assert_eq!(
        retention
            .recordings(Utc::now() + Duration::days(31))
            .await
            .unwrap(),
        0
    );

    let r = s
        .http
        .get(s.url(&format!("/api/v1/client/tasks/{id}/recording")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::GONE);
    let task =
        crate::tasks::wait_status(&s, &id, "completed", std::time::Duration::from_secs(5)).await;
    assert_eq!(
        task["result"]["verdict"], "safe",
        "the verdict stays: {task}"
    );
    assert!(task["recordingDeletedAt"].is_string(), "{task}");
    assert!(task.get("recordingUrl").is_none(), "{task}");
    // Nothing left to analyse again.
    let r = s
        .http
        .post(s.url("/api/v1/admin/tasks/reanalyse"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["requested"], 0);
    let kinds: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_id = $1 ORDER BY sequence",
    )
    .bind(&id)
    .fetch_all(&s.db.pool)
    .await
    .unwrap();
    assert_eq!(kinds.last().map(String::as_str), Some("RecordingDeleted"));
}
