//! `make backup` / `make restore`: the database is the backup; a fresh stack restored from it
//! republishes the same history and rebuilds the same read models.

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
