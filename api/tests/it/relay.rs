//! Invariant 1 under fire: the relay process is killed with SIGKILL again and again while
//! commands run; afterwards EVENTS holds every event exactly once, in per-aggregate order.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use api::commands::{execute, CommandContext};
use api::domain::admin::{Admin, AdminCommand, AdminServices};
use api::passwords::Passwords;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::CqrsFramework;
use postgres_es::PostgresEventRepository;
use testkit::{Db, Nats};
use tokio::process::Command;

use crate::helpers::{connections, stream_contents};

const ADMINS: usize = 400;
const COMMANDS_PER_ADMIN: usize = 5; // create + 4 password changes = 2,000 commands

fn relay_process(db: &Db, nats: &Nats) -> Command {
    let conn = connections(&db.url, nats, "api");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_api"));
    cmd.arg("relay")
        .env("DATABASE_URL", &conn.database_url)
        .env("NATS_URL", &conn.nats_url)
        .env("NATS_USER", "api")
        .env("NATS_PASSWORD", testkit::nats_password("api"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_killed_repeatedly_publishes_every_event_exactly_once_in_order() {
    let db = Db::fresh().await.unwrap();
    let nats = Nats::start().await.unwrap();
    let js = async_nats::jetstream::new(nats.client("api").await.unwrap());
    events::topology::ensure(&js, 1).await.unwrap();

    let store = PersistedEventStore::new_event_store(PostgresEventRepository::new(db.pool.clone()));
    let cqrs = Arc::new(CqrsFramework::<Admin, _>::new(
        store,
        vec![],
        AdminServices {
            passwords: Passwords::insecure_fast(),
        },
    ));
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let (cqrs, done) = (cqrs.clone(), done.clone());
        tokio::spawn(async move {
            let ctx = CommandContext::new("system:test", None);
            let hash = Passwords::insecure_fast()
                .hash("relay-test-pw".into())
                .await
                .unwrap();
            let mut tasks = Vec::new();
            for worker in 0..8 {
                let (cqrs, ctx, hash) = (cqrs.clone(), ctx.clone(), hash.clone());
                tasks.push(tokio::spawn(async move {
                    for a in (worker..ADMINS).step_by(8) {
                        let id = format!("admin-{a}");
                        let create = AdminCommand::Create {
                            username: id.clone(),
                            password_hash: hash.clone(),
                        };
                        execute(&cqrs, &id, create, &ctx).await.unwrap();
                        for _ in 1..COMMANDS_PER_ADMIN {
                            let change = AdminCommand::ChangePassword {
                                current_password: "relay-test-pw".into(),
                                new_password_hash: hash.clone(),
                            };
                            execute(&cqrs, &id, change, &ctx).await.unwrap();
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };

    let mut kills = 0;
    while !done.load(Ordering::SeqCst) {
        let mut relay = relay_process(&db, &nats).spawn().unwrap();
        let ms = 150 + (kills * 37 % 250);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        testkit::kill9(relay.id().unwrap());
        let _ = relay.wait().await;
        kills += 1;
    }
    writer.await.unwrap();
    assert!(kills >= 3, "the relay was killed only {kills} times");

    // A last relay drains what is left.
    let mut relay = relay_process(&db, &nats).spawn().unwrap();
    let drained = testkit::eventually(Duration::from_secs(60), || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
            .fetch_one(&db.pool)
            .await
            .ok()?;
        (n == 0).then_some(())
    })
    .await;
    testkit::kill9(relay.id().unwrap());
    let _ = relay.wait().await;
    assert!(drained.is_some(), "the outbox never drained");

    let total = ADMINS * COMMANDS_PER_ADMIN;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(stored as usize, total);

    let history = stream_contents(&js).await;
    assert_eq!(
        history.len(),
        total,
        "EVENTS must hold every event exactly once"
    );
    let ids: HashSet<&str> = history.iter().map(|(_, id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), total, "no Msg-Id twice");
    let mut last: HashMap<&str, u64> = HashMap::new();
    for (_, msg_id, env) in &history {
        assert_eq!(msg_id, &env.msg_id());
        let prev = last.insert(&env.aggregate_id, env.sequence).unwrap_or(0);
        assert_eq!(
            env.sequence,
            prev + 1,
            "per-aggregate order broken for {}",
            env.aggregate_id
        );
    }
    assert!(last.values().all(|&n| n == COMMANDS_PER_ADMIN as u64));
    eprintln!("relay killed {kills} times; {total} events intact");
}
