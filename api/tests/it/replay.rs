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

/// The hardening review: `replay` could create, re-filter, delete and pull from any consumer on
/// `EVENTS`, including the services' (deleting `projector` stopped read models and bans).
#[tokio::test]
async fn the_replay_user_cannot_touch_update_or_pull_from_a_service_consumer() {
    use async_nats::jetstream::consumer::pull;
    use std::time::Duration;
    let s = Stack::start().await;
    s.token(&s.seed().await).await;
    s.projected().await;
    let js = s.js("replay").await;
    let stream = js.get_stream("EVENTS").await.unwrap();
    let refused = |r: bool, what: &str| assert!(r, "the replay user could {what}");
    for service in ["projector", "dispatcher", "notifier"] {
        let hostile = pull::Config {
            durable_name: Some(service.to_owned()),
            filter_subject: "ev.nothing.>".into(),
            ..Default::default()
        };
        let created = tokio::time::timeout(
            Duration::from_secs(2),
            stream.create_consumer(hostile.clone()),
        )
        .await;
        refused(
            !matches!(created, Ok(Ok(_))),
            &format!("re-filter {service}"),
        );
        let deleted =
            tokio::time::timeout(Duration::from_secs(2), stream.delete_consumer(service)).await;
        refused(!matches!(deleted, Ok(Ok(_))), &format!("delete {service}"));
        // The unnamed legacy create takes its name from the body.
        let legacy = serde_json::json!({
            "stream_name": "EVENTS",
            "config": {"name": service, "filter_subject": "ev.nothing.>", "ack_policy": "none"},
        });
        let client = s.nats.client("replay").await.unwrap();
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(
                "$JS.API.CONSUMER.CREATE.EVENTS",
                serde_json::to_vec(&legacy).unwrap().into(),
            ),
        )
        .await;
        let answered_ok = matches!(&answer, Ok(Ok(m)) if !String::from_utf8_lossy(&m.payload).contains("\"error\""));
        refused(
            !answered_ok,
            &format!("create {service} without a name in the subject"),
        );
        // Pulling from a service's consumer would steal its messages until their ack wait.
        let pulled = tokio::time::timeout(Duration::from_secs(2), async {
            let c: async_nats::jetstream::consumer::PullConsumer =
                stream.get_consumer(service).await.ok()?;
            let mut batch = c
                .fetch()
                .max_messages(1)
                .expires(Duration::from_millis(500))
                .messages()
                .await
                .ok()?;
            Some(
                futures::StreamExt::next(&mut batch)
                    .await
                    .is_some_and(|m| m.is_ok()),
            )
        })
        .await;
        refused(
            !matches!(pulled, Ok(Some(true))),
            &format!("pull from {service}"),
        );
    }
    // Every service consumer is still there, exactly as defined.
    let api = s.js("api").await;
    let events = api.get_stream("EVENTS").await.unwrap();
    for (name, def) in [
        ("projector", events::topology::projector_consumer()),
        ("dispatcher", events::topology::dispatcher_consumer()),
        ("notifier", events::topology::notifier_consumer()),
    ] {
        let info = events.consumer_info(name).await.unwrap();
        assert_eq!(info.config.filter_subjects, def.filter_subjects, "{name}");
        assert_eq!(info.config.filter_subject, def.filter_subject, "{name}");
        assert_eq!(info.num_ack_pending, 0, "{name}: nothing was pulled");
    }
    // Analysts' own consumers still work: created by name, read, deleted.
    let own = stream
        .create_consumer(pull::Config {
            durable_name: Some("analyst-alice".into()),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut batch = own.fetch().max_messages(10).messages().await.unwrap();
    assert!(futures::StreamExt::next(&mut batch).await.is_some());
    stream.delete_consumer("analyst-alice").await.unwrap();
    let lines = lines(&js, ReplayFilter::default()).await;
    assert_eq!(lines.len(), 2);
}

/// A service consumer deleted while the services run comes back, and nothing is lost. (The
/// notifier runs only with an email provider configured; it uses the same loop as the dispatcher.)
#[tokio::test]
async fn a_deleted_service_consumer_is_recreated_while_running() {
    let s = Stack::start().await;
    let password = s.seed().await;
    s.projected().await;
    let api = s.js("api").await;
    let events_stream = api.get_stream("EVENTS").await.unwrap();
    for name in ["projector", "dispatcher"] {
        events_stream.delete_consumer(name).await.unwrap();
    }
    s.token(&password).await;
    s.projected().await;
    let logins: i64 = sqlx::query_scalar("SELECT count(*) FROM admin_sessions")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(logins, 1, "the login was projected by a recreated consumer");
    for name in ["projector", "dispatcher"] {
        let back = testkit::eventually(std::time::Duration::from_secs(20), || {
            let stream = events_stream.clone();
            async move { stream.clone().consumer_info(name).await.ok() }
        })
        .await;
        assert!(back.is_some(), "{name} was not recreated");
    }
}

/// The deny list in both NATS configurations names every service consumer on `EVENTS` (NATS
/// permissions cannot say "any name but these").
#[test]
fn both_nats_configurations_deny_every_service_consumer_to_the_replay_user() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut services = vec![];
    for entry in std::fs::read_dir(root.join("nats/jetstream")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("EVENTS.") && name != "EVENTS.json" {
            let def: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            services.push(def["durable_name"].as_str().unwrap().to_owned());
        }
    }
    assert!(services.len() >= 3, "{services:?}");
    for conf in ["nats/dev.conf", "nats/cluster.conf"] {
        let text = std::fs::read_to_string(root.join(conf)).unwrap();
        let deny = &text[text.find("deny: [\n").expect("a deny list")..];
        let deny = &deny[..deny.find(']').unwrap()];
        assert!(
            !text.contains("\"$JS.API.CONSUMER.CREATE.EVENTS\","),
            "{conf}: the unnamed create is allowed"
        );
        for s in &services {
            for subject in [
                format!("$JS.API.CONSUMER.CREATE.EVENTS.{s}\""),
                format!("$JS.API.CONSUMER.CREATE.EVENTS.{s}.>\""),
                format!("$JS.API.CONSUMER.DELETE.EVENTS.{s}\""),
                format!("$JS.API.CONSUMER.MSG.NEXT.EVENTS.{s}\""),
            ] {
                assert!(deny.contains(&subject), "{conf} does not deny {subject}");
            }
        }
    }
}
